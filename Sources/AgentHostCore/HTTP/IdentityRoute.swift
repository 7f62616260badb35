import NIOHTTP1

/// A plain HTTP GET route for clients, authenticated exactly as the WebSocket routes are (the same credentials, the
/// same `ConnectionAuthenticator`), answered by whatever layer owns the data (the run history API).
public protocol IdentityRoute: Sendable {
    /// Answers `path` (the route's prefix, or below it) for `identity`, nil when the request carried no
    /// credentials. `query` is the request target's query, without the '?'.
    func respond(path: String, query: String?, identity: Identity?) async -> IdentityRouteResponse
}

/// What an identity route answers.
public struct IdentityRouteResponse: Sendable {
    public var status: HTTPResponseStatus
    public var body: String

    public init(status: HTTPResponseStatus, body: String) {
        self.status = status
        self.body = body
    }
}

/// Identity routes by prefix: "/runs" serves "/runs" and "/runs/...".
public struct IdentityRoutes: Sendable {
    public var routes: [String: any IdentityRoute]

    public init(_ routes: [String: any IdentityRoute] = [:]) {
        self.routes = routes
    }

    func route(for path: Substring) -> (any IdentityRoute)? {
        guard !self.routes.isEmpty else { return nil }
        if let route = self.routes[String(path)] { return route }
        guard let slash = path.dropFirst().firstIndex(of: "/") else { return nil }
        return self.routes[String(path[..<slash])]
    }
}
