/// Several authenticators asked in order, for servers that accept more than one kind of credential (tokens and
/// client certificates): the first that recognizes a credential decides. A credential that is presented and
/// invalid is a refusal, even if a later authenticator would have accepted another one: a client never falls back
/// to a weaker credential by sending a bad strong one.
public struct AuthenticatorChain: ConnectionAuthenticator {
    public let authenticators: [any ConnectionAuthenticator]

    public init(_ authenticators: [any ConnectionAuthenticator]) {
        self.authenticators = authenticators
    }

    public func authenticate(_ request: AuthenticationRequest) async -> AuthenticationResult {
        for authenticator in self.authenticators {
            let result = await authenticator.authenticate(request)
            if result != .anonymous { return result }
        }
        return .anonymous
    }
}
