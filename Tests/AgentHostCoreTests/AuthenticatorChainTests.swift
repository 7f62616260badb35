import AgentHostCore
import NIOHTTP1
import Testing

@Suite("Authenticator chain")
struct AuthenticatorChainTests {
    struct Fixed: ConnectionAuthenticator {
        let result: AuthenticationResult
        func authenticate(_ request: AuthenticationRequest) async -> AuthenticationResult { self.result }
    }

    static let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
    static let alice = Identity(subject: "alice", issuer: "https://idp", scopes: [], claimsJSON: "{}")
    static let certificate = Identity(subject: "CN=bob", issuer: "mtls:CA", scopes: [], claimsJSON: "{}")

    @Test func theFirstThatRecognizesACredentialDecides() async {
        let chain = AuthenticatorChain([Fixed(result: .anonymous), Fixed(result: .authenticated(Self.alice, tokenProtocol: nil)),
                                        Fixed(result: .rejected("never asked"))])
        #expect(await chain.authenticate(AuthenticationRequest(head: Self.head)) == .authenticated(Self.alice, tokenProtocol: nil))
    }

    /// A bad token is a refusal even when a valid client certificate came along: no falling back.
    @Test func anInvalidCredentialIsARefusalWhateverFollows() async {
        let chain = AuthenticatorChain([Fixed(result: .rejected("expired token")), ClientCertificateAuthenticator()])
        let request = AuthenticationRequest(head: Self.head, clientCertificate: Self.certificate)
        #expect(await chain.authenticate(request) == .rejected("expired token"))
    }

    @Test func aVerifiedClientCertificateIdentifiesAClientWithoutAToken() async {
        let chain = AuthenticatorChain([Fixed(result: .anonymous), ClientCertificateAuthenticator()])
        #expect(await chain.authenticate(AuthenticationRequest(head: Self.head, clientCertificate: Self.certificate))
            == .authenticated(Self.certificate, tokenProtocol: nil))
        #expect(await chain.authenticate(AuthenticationRequest(head: Self.head)) == .anonymous)
    }
}
