import NIOCore

/// Closes a connection that has not completed an HTTP request or WebSocket upgrade within the handshake timeout:
/// a client trickling header bytes (slowloris) must not hold a connection forever. Removed once the connection
/// is upgraded or has been answered.
final class HandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    static let name = "handshake-timeout"

    private let timeout: TimeAmount
    private var task: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.task = context.eventLoop.scheduleTask(in: self.timeout) {
            Refusals.count(.handshakeTimeout)
            loopBound.value.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.task?.cancel()
        self.task = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.task?.cancel()
        context.fireChannelInactive()
    }
}
