import NIOCore

/// Limits on plain HTTP requests (those that do not upgrade).
public struct HTTPLimits: Sendable {
    /// A request's body must be in, and its answer out, within this time from its head.
    public var requestTimeout: TimeAmount = .seconds(10)
    /// A kept-alive connection must send its next request's head within this time of the last answer.
    public var keepAliveTimeout: TimeAmount = .seconds(5)
    /// Larger request bodies get 413 and the connection is closed.
    public var maxBodySize: Int = 64 << 10

    public init() {}
}
