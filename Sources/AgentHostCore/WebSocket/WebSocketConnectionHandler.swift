import Logging
import NIOCore
import NIOWebSocket

/// The last handler of an upgraded connection: turns frames into session calls and session calls into frames.
///
/// Everything runs on the connection's event loop: a frame is read, the session (a plugin callback) runs, its
/// replies are written, and all writes of one read burst go out with a single flush at `channelReadComplete`.
/// No task hop and no awaited write per message: that is what keeps the plugin path near a bare NIO echo.
final class WebSocketConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Server frames are not masked, so a header is at most 10 bytes; senders reserve this much headroom so the
    /// encoder can prepend the header in place.
    static let maxFrameHeaderSize = 10

    private let endpoint: any WebSocketEndpoint
    private let info: ConnectionInfo
    private let configuration: WebSocketConfiguration
    private let registry: ConnectionRegistry
    private let openConnections: OpenConnections
    private let logger: Logger

    private var stateMachine: WebSocketConnectionStateMachine
    private var context: ChannelHandlerContext?
    private var connection: WebSocketConnection?
    private var session: (any WebSocketSession)?

    /// Inside a read burst or a session call: writes wait for the flush at its end.
    private var batchingWrites = false
    private var needsFlush = false
    private var flushScheduled = false
    private var closeFrameSent = false
    private var finished = false
    /// A send returned backpressure: tell the session when the channel is writable again.
    private var owesWritable = false
    /// A read was held back while the channel was not writable (a client that sends but does not read).
    private var readPending = false

    private var lastInbound: NIODeadline = .now()
    private var lastMessage: NIODeadline = .now()
    private var pingTask: RepeatedTask?
    private var idleTask: RepeatedTask?
    private var pingTimeoutTask: Scheduled<Void>?
    private var closeTimeoutTask: Scheduled<Void>?

    init(endpoint: any WebSocketEndpoint, info: ConnectionInfo, configuration: WebSocketConfiguration,
         registry: ConnectionRegistry, openConnections: OpenConnections, logger: Logger) {
        self.endpoint = endpoint
        self.info = info
        self.configuration = configuration
        self.registry = registry
        self.openConnections = openConnections
        self.logger = logger
        self.stateMachine = WebSocketConnectionStateMachine(maxMessageSize: configuration.maxMessageSize)
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let connection = WebSocketConnection(eventLoop: context.eventLoop, configuration: self.configuration,
                                             handler: self)
        self.connection = connection
        connection.register(in: self.registry)
        do {
            let session = try self.endpoint.openSession(connection: connection, info: self.info)
            self.session = session
            connection.attach(session: session)
            self.openConnections.insert(connection)
        } catch {
            self.logger.warning("endpoint refused the connection", metadata: [
                "endpoint": "\(self.endpoint.name)", "route": "\(self.info.route)", "error": "\(error)",
            ])
            self.registry.unregister(connection.handle)
            connection.didClose()
            self.finished = true  // the endpoint never opened a session: it gets no didClose
            self.writeCloseFrame(context: context, code: CloseCode.internalError, reason: "", thenDisconnect: true)
            return
        }
        self.startTimers(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.finish(code: CloseCode.abnormal, reason: "", failure: nil)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        let failure: WebSocketFailure? =
            self.stateMachine.state == .open ? .transport("connection lost without a close handshake") : nil
        switch self.stateMachine.state {
        case .closeSent(let code, let reason):
            self.finish(code: code, reason: reason, failure: nil)
        default:
            self.finish(code: CloseCode.abnormal, reason: "", failure: failure)
        }
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        self.lastInbound = .now()
        self.batchingWrites = true
        switch self.stateMachine.receive(frame) {
        case .none:
            break
        case .deliver(let kind, let data):
            self.lastMessage = self.lastInbound
            self.session?.didReceive(kind: kind, data: data)
        case .sendPong(let data):
            context.write(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: data)), promise: nil)
            self.needsFlush = true
        case .fail(let code, let failure):
            self.fail(context: context, code: code, failure: failure)
        case .peerClosed(let code, let reason, let replyCode):
            // Tell the session first: the close below may complete synchronously and run channelInactive.
            self.connection?.markClosing()
            self.finish(code: code, reason: reason, failure: nil)
            self.writeCloseFrame(context: context, code: replyCode, reason: "", thenDisconnect: true)
        case .closeHandshakeCompleted(let code, let reason):
            self.finish(code: code, reason: reason, failure: nil)
            context.flush()
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.batchingWrites = false
        self.flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketError.invalidFrameLength:
            self.fail(context: context, code: CloseCode.messageTooBig,
                      failure: .tooLarge("frame larger than \(self.configuration.maxFrameSize) bytes"))
        case let error as NIOWebSocketError:
            self.fail(context: context, code: CloseCode.protocolError, failure: .protocolError("\(error)"))
        default:
            self.logger.debug("connection error", metadata: ["error": "\(error)"])
            self.stateMachine.closed()
            self.finish(code: CloseCode.abnormal, reason: "", failure: .transport("\(error)"))
            context.close(promise: nil)
        }
    }

    // MARK: Outbound backpressure

    func read(context: ChannelHandlerContext) {
        // Stop reading from a client whose replies we cannot write: its own sends then back up in the kernel.
        if context.channel.isWritable {
            context.read()
        } else {
            self.readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if self.readPending {
                self.readPending = false
                context.read()
            }
            if self.owesWritable {
                self.owesWritable = false
                self.withBatchedWrites(context: context) { $0.session?.didBecomeWritable() }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Called by WebSocketConnection (on the event loop)

    func writeMessage(kind: WebSocketMessageKind, data: ByteBuffer) -> ConnectionCallStatus {
        guard let context = self.context, self.stateMachine.state == .open, !self.closeFrameSent else {
            return .closed
        }
        if !context.channel.isWritable {
            // Already past the high-water mark: past the hard limit the client is not reading at all.
            let buffered = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
            if buffered > self.configuration.outboundHardLimit {
                self.fail(context: context, code: CloseCode.policyViolation,
                          failure: .policy("client not reading: \(buffered) bytes queued"))
                return .closed
            }
        }
        let frame = WebSocketFrame(fin: true, opcode: kind == .text ? .text : .binary, data: data)
        context.write(Self.wrapOutboundOut(frame), promise: nil)
        self.scheduleFlush(context: context)
        if !context.channel.isWritable {
            self.owesWritable = true
            return .backpressure
        }
        return .ok
    }

    func initiateClose(code: UInt16, reason: String) {
        guard let context = self.context, self.stateMachine.closeInitiated(code: code, reason: reason) else { return }
        self.connection?.markClosing()
        self.writeCloseFrame(context: context, code: code, reason: reason)
        self.flushIfNeeded(context: context, force: true)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.closeTimeoutTask = context.eventLoop.scheduleTask(in: self.configuration.closeTimeout) {
            loopBound.value.close(promise: nil)
        }
    }

    func deliver(event: DeferredEvent, to session: any WebSocketSession) {
        guard let context = self.context else { return }
        self.withBatchedWrites(context: context) { _ in session.didReceive(event: event) }
    }

    // MARK: Helpers

    private func withBatchedWrites(context: ChannelHandlerContext, _ body: (WebSocketConnectionHandler) -> Void) {
        let wasBatching = self.batchingWrites
        self.batchingWrites = true
        body(self)
        self.batchingWrites = wasBatching
        if !wasBatching { self.flushIfNeeded(context: context) }
    }

    private func scheduleFlush(context: ChannelHandlerContext) {
        self.needsFlush = true
        guard !self.batchingWrites, !self.flushScheduled else { return }
        // A send from outside a read burst (a timer, a posted event, another thread): flush once, soon, so that
        // several sends in the same event-loop tick share one syscall.
        self.flushScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = loopBound.value
            handler.flushScheduled = false
            if let context = handler.context { handler.flushIfNeeded(context: context) }
        }
    }

    private func flushIfNeeded(context: ChannelHandlerContext, force: Bool = false) {
        if self.needsFlush || force {
            self.needsFlush = false
            context.flush()
        }
    }

    /// Writes our close frame (once). With `thenDisconnect`, drops TCP as soon as it is written: the server
    /// closes TCP first (RFC 6455 7.1.1).
    private func writeCloseFrame(context: ChannelHandlerContext, code: UInt16?, reason: String,
                                 thenDisconnect: Bool = false) {
        guard !self.closeFrameSent else {
            if thenDisconnect { context.close(promise: nil) }
            return
        }
        self.closeFrameSent = true
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        if let code {
            payload.writeInteger(code)
            payload.writeString(reason)
        }
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
        guard thenDisconnect else {
            context.write(Self.wrapOutboundOut(frame), promise: nil)
            self.needsFlush = true
            return
        }
        self.needsFlush = false
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(Self.wrapOutboundOut(frame)).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }

    /// Fails the connection (RFC 6455 7.1.7): send our close frame if we have not yet, then drop TCP.
    private func fail(context: ChannelHandlerContext, code: UInt16, failure: WebSocketFailure) {
        self.stateMachine.closed()
        self.connection?.markClosing()
        self.finish(code: code, reason: "", failure: failure)
        self.writeCloseFrame(context: context, code: code, reason: "", thenDisconnect: true)
    }

    /// Tells the session the connection is over, exactly once, and releases everything tied to it.
    private func finish(code: UInt16, reason: String, failure: WebSocketFailure?) {
        guard !self.finished else { return }
        self.finished = true
        self.stateMachine.closed()
        self.cancelTimers()
        if let session = self.session {
            if let failure { session.didFail(failure) }
            session.didClose(code: code, reason: reason)
        }
        if let connection = self.connection {
            self.openConnections.remove(connection)
            self.registry.unregister(connection.handle)
            connection.didClose()
        }
    }

    // MARK: Keep-alive and idle timers

    private func startTimers(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        if let interval = self.configuration.pingInterval {
            self.pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                loopBound.value.pingIfQuiet(interval: interval)
            }
        }
        if let idle = self.configuration.idleTimeout {
            let period = max(TimeAmount.milliseconds(idle.nanoseconds / 4_000_000), .milliseconds(10))
            self.idleTask = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
                loopBound.value.closeIfIdle(timeout: idle)
            }
        }
    }

    private func pingIfQuiet(interval: TimeAmount) {
        guard let context = self.context, self.stateMachine.state == .open else { return }
        let sentAt = NIODeadline.now()
        guard sentAt - self.lastInbound >= interval, self.pingTimeoutTask == nil else { return }
        var payload = context.channel.allocator.buffer(capacity: 8)
        payload.writeInteger(UInt64(sentAt.uptimeNanoseconds))
        context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: payload)),
                              promise: nil)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.pingTimeoutTask = context.eventLoop.scheduleTask(in: self.configuration.pingTimeout) {
            let handler = loopBound.value
            handler.pingTimeoutTask = nil
            guard handler.lastInbound < sentAt, let context = handler.context else { return }
            // The peer is gone or stuck: a close frame would not be read either, so drop the connection.
            handler.stateMachine.closed()
            handler.finish(code: CloseCode.abnormal, reason: "",
                           failure: .timeout("no answer to ping within \(handler.configuration.pingTimeout)"))
            context.close(promise: nil)
        }
    }

    private func closeIfIdle(timeout: TimeAmount) {
        guard self.stateMachine.state == .open, NIODeadline.now() - self.lastMessage >= timeout else { return }
        self.session?.didFail(.timeout("no message for \(timeout)"))
        self.initiateClose(code: CloseCode.goingAway, reason: "idle timeout")
    }

    private func cancelTimers() {
        self.pingTask?.cancel()
        self.pingTask = nil
        self.idleTask?.cancel()
        self.idleTask = nil
        self.pingTimeoutTask?.cancel()
        self.pingTimeoutTask = nil
        self.closeTimeoutTask?.cancel()
        self.closeTimeoutTask = nil
    }
}
