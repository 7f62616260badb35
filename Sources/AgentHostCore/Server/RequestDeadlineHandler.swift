import NIOCore

/// Closes a connection that is too slow with its HTTP requests: a client trickling header or body bytes (slowloris),
/// or holding a keep-alive connection open without asking anything, must not hold a connection slot forever.
///
/// It sits first in the plain-text pipeline and sees only bytes, so the handlers that understand requests tell it
/// what the connection is waiting for: the first request (upgrade or not) must be complete within the handshake
/// timeout; a plain request's body within the request timeout from its head; the next request on a kept-alive
/// connection must begin (its head complete) within the keep-alive timeout. It is removed once the connection is
/// upgraded: WebSockets have their own ping and idle timeouts.
final class RequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    static let name = "request-deadline"

    /// What the connection is being timed for; named in the refusal metric.
    enum Phase {
        case handshake
        case request
        case keepAlive
    }

    private let handshakeTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var task: Scheduled<Void>?

    init(handshakeTimeout: TimeAmount) {
        self.handshakeTimeout = handshakeTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.arm(.handshake, in: self.handshakeTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.disarm()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.disarm()
        context.fireChannelInactive()
    }

    /// Closes the connection unless `disarm` or another `arm` comes within `timeout`. Event loop only.
    func arm(_ phase: Phase, in timeout: TimeAmount) {
        self.disarm()
        guard let context = self.context else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.task = context.eventLoop.scheduleTask(in: timeout) {
            Refusals.count(phase == .keepAlive ? .idleTimeout : .handshakeTimeout)
            loopBound.value.close(promise: nil)
        }
    }

    func disarm() {
        self.task?.cancel()
        self.task = nil
    }
}
