/// mTLS as an authenticator: a client certificate the TLS handshake verified against the client CA is the
/// identity (its subject, with issuer `mtls:<CA>`); no certificate is anonymous. The TLS layer has already refused
/// certificates it could not verify, so there is nothing to reject here.
public struct ClientCertificateAuthenticator: ConnectionAuthenticator {
    public init() {}

    public func authenticate(_ request: AuthenticationRequest) async -> AuthenticationResult {
        guard let identity = request.clientCertificate else { return .anonymous }
        return .authenticated(identity, tokenProtocol: nil)
    }
}
