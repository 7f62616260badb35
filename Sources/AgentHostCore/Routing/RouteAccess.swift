/// Who may open a route.
public enum RouteAccess: Sendable, Equatable {
    /// Anyone; credentials, if sent, must still be valid.
    case open
    /// Any authenticated identity.
    case authenticated
    /// An authenticated identity holding every one of these scopes (or roles).
    case scopes([String])

    /// nil if `result` may open the route, else the HTTP status and message of the refusal.
    func refusal(for result: AuthenticationResult) -> (status: Int, message: String)? {
        switch (self, result) {
        case (_, .rejected(let reason)):
            return (401, reason)
        case (.open, _):
            return nil
        case (.authenticated, .anonymous), (.scopes, .anonymous):
            return (401, "this route needs credentials: a bearer token or an API key")
        case (.authenticated, .authenticated):
            return nil
        case (.scopes(let required), .authenticated(let identity, _)):
            let missing = required.filter { !identity.scopes.contains($0) }
            return missing.isEmpty ? nil : (403, "missing scope(s): \(missing.joined(separator: " "))")
        }
    }
}
