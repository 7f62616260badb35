import NIOCore

/// Limits and timers of one WebSocket connection. The defaults are safe on the public internet.
public struct WebSocketConfiguration: Sendable, Equatable {
    /// Largest frame payload accepted from a client; larger frames close the connection with 1009.
    public var maxFrameSize: Int = 1 << 20
    /// Largest message (all fragments joined) accepted from a client; larger closes with 1009.
    public var maxMessageSize: Int = 1 << 20
    /// How often an idle connection is pinged. `nil` disables automatic pings.
    public var pingInterval: TimeAmount? = .seconds(30)
    /// How long to wait for a pong (or any frame) after an automatic ping before giving up on the peer.
    public var pingTimeout: TimeAmount = .seconds(20)
    /// A connection that exchanges no data message for this long is closed with 1001. `nil` disables.
    public var idleTimeout: TimeAmount? = .seconds(300)
    /// How long to wait for the client's close frame after sending ours before dropping the TCP connection.
    public var closeTimeout: TimeAmount = .seconds(5)
    /// Above this many queued outbound bytes a plugin's send returns backpressure.
    public var outboundHighWatermark: Int = 1 << 20
    /// Below this many queued outbound bytes the plugin is told it may write again.
    public var outboundLowWatermark: Int = 256 << 10
    /// Past this many queued outbound bytes the connection is closed with 1008: a client that never reads
    /// cannot grow the host's memory without bound.
    public var outboundHardLimit: Int = 8 << 20
    /// Inbound frames per second a connection may send on average (a message in one frame counts once; each
    /// fragment, ping and pong counts); above it the connection is closed with 1008. 0: no limit.
    public var maxMessagesPerSecond: Int = 1000
    /// Frames a connection may send at once before the average rate applies.
    public var messageBurst: Int = 2000
    /// An endpoint (plugin) callback running longer than this is logged with its duration.
    public var slowCallbackThreshold: TimeAmount = .milliseconds(50)

    public init() {}
}
