/// What a route demands of a connection before it is upgraded, beyond the server-wide limits.
public struct RoutePolicy: Sendable, Equatable {
    /// Browser origins allowed to open this route (exact `scheme://host[:port]` matches). A request carrying an
    /// `Origin` header not listed here is refused with 403: the defence against cross-site WebSocket hijacking.
    /// Requests without an `Origin` (programs, not browsers) are not affected. nil: any origin.
    public var allowedOrigins: [String]?
    /// Who may open the route (checked only when the server has an authenticator).
    public var access: RouteAccess

    public init(allowedOrigins: [String]? = nil, access: RouteAccess = .authenticated) {
        self.allowedOrigins = allowedOrigins
        self.access = access
    }
}
