/// An immutable map from request path to endpoint. A new table is built off to the side and published whole.
public struct RouteTable: Sendable {
    public private(set) var endpoints: [String: any WebSocketEndpoint]

    public init(_ endpoints: [String: any WebSocketEndpoint] = [:]) {
        self.endpoints = endpoints
    }

    public func endpoint(forPath path: some StringProtocol) -> (any WebSocketEndpoint)? {
        self.endpoints[String(path)]
    }

    public var routes: [String] { self.endpoints.keys.sorted() }
}
