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

/// Checks the credentials of an upgrade request, before anything is upgraded and before any plugin hears of it.
/// The core knows no token formats: `AgentHostAuth` implements this for JWTs and API keys.
public protocol ConnectionAuthenticator: Sendable {
    func authenticate(_ request: HTTPRequestHead) async -> AuthenticationResult
}
