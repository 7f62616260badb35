/// An immutable map from request path to endpoint. A new table is built off to the side and published whole.
///
/// A route ending in `/*` is a pattern (`RoutePattern`): it serves every path below it (`/agents/*` serves `/agents/writer`), so a
/// plugin can serve paths that carry an id, as AutoGen Studio's `/api/ws/runs/{run_id}` does. An exact route wins
/// over a pattern, and a longer pattern over a shorter one.
public struct RouteTable: Sendable {
    public private(set) var endpoints: [String: any WebSocketEndpoint]
    /// The pattern routes as (prefix with its trailing "/", endpoint), longest prefix first.
    private let patterns: [(prefix: String, endpoint: any WebSocketEndpoint)]

    public init(_ endpoints: [String: any WebSocketEndpoint] = [:]) {
        self.endpoints = endpoints
        self.patterns = endpoints.compactMap { route, endpoint in
            RoutePattern.prefix(of: route).map { (String($0), endpoint) }
        }.sorted { $0.prefix.count > $1.prefix.count }
    }

    public func endpoint(forPath path: some StringProtocol) -> (any WebSocketEndpoint)? {
        if let exact = self.endpoints[String(path)] { return exact }
        for pattern in self.patterns where path.count > pattern.prefix.count && path.hasPrefix(pattern.prefix) {
            return pattern.endpoint
        }
        return nil
    }

    public var routes: [String] { self.endpoints.keys.sorted() }
}
