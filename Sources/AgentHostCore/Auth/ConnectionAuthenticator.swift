import NIOHTTP1

/// What an authenticator made of a request's credentials.
public enum AuthenticationResult: Sendable, Equatable {
    /// The request carried no credentials.
    case anonymous
    /// Valid credentials: who it is, and which `Sec-WebSocket-Protocol` entry carried the token (if one did), so
    /// the server does not select that entry as the connection's subprotocol.
    case authenticated(Identity, tokenProtocol: String?)
    /// Credentials were presented and are not valid; the reason is for logs and the 401 body.
    case rejected(String)
}

/// What an authenticator may look at: the request, and the client certificate TLS verified (mTLS), if any.
public struct AuthenticationRequest: Sendable {
    public var head: HTTPRequestHead
    /// The identity of the client certificate the TLS handshake verified against the client CA; nil without mTLS.
    public var clientCertificate: Identity?

    public init(head: HTTPRequestHead, clientCertificate: Identity? = nil) {
        self.head = head
        self.clientCertificate = clientCertificate
    }
}

/// Checks the credentials of an upgrade request, before anything is upgraded and before any plugin hears of it.
/// The core knows no token formats: `AgentHostAuth` implements this for JWTs and API keys; the core's own
/// `ClientCertificateAuthenticator` turns a verified client certificate into an identity. Several are combined
/// with `AuthenticatorChain`.
public protocol ConnectionAuthenticator: Sendable {
    func authenticate(_ request: AuthenticationRequest) async -> AuthenticationResult
}
