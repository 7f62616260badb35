import Logging
import NIOCore
import NIOWebSocket

/// The last handler of an upgraded connection: turns frames into session calls and session calls into frames.
///
/// Everything runs on the connection's event loop: a frame is read, the session (a plugin callback) runs, its
/// replies are written, and all writes of one read burst go out with a single flush at `channelReadComplete`.
/// No task hop and no awaited write per message: that is what keeps the plugin path near a bare NIO echo.
final class WebSocketConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// The connection's bytes: the handler reads frames out of them itself (see `WebSocketFrameParser` for why).
    typealias InboundIn = ByteBuffer
    /// Complete frames from `WebSocketFrameWriter` (NIO's encoder is not in the pipeline; see that type for why).
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let endpoint: any WebSocketEndpoint
    /// Until the session is open; then only the route is kept (an idle connection should weigh little).
    private var pendingInfo: PendingConnectionInfo?
    private let route: String
    private let settings: ConnectionSettings
    private var configuration: WebSocketConfiguration { self.settings.configuration }
    private var registry: ConnectionRegistry { self.settings.registry }
    private var openConnections: OpenConnections { self.settings.openConnections }
    private var logger: Logger { self.settings.logger }

    private var stateMachine: WebSocketConnectionStateMachine
    private var context: ChannelHandlerContext?
    private var connection: WebSocketConnection?
    private var session: (any WebSocketSession)?

    // The flags sit together: Swift lays a class's stored properties out in declaration order, and a flag between
    // two 8-byte fields costs 8 bytes on every connection.

    /// Inside a read burst or a session call: writes wait for the flush at its end.
    private var batchingWrites = false
    private var needsFlush = false
    private var flushScheduled = false
    private var closeFrameSent = false
    private var finished = false
    /// A read was held back while the channel was not writable (a client that sends but does not read), or while
    /// the endpoint paused reading.
    private var readPending = false
    /// The endpoint paused reading (inbound flow control): bytes already read wait in `RareState.unparsed`.
    private var readingPaused = false
    /// A resume is scheduled: bytes still go to `RareState.unparsed` until the replay runs, so order holds.
    private var replayScheduled = false
    /// A send returned backpressure: tell the session when the channel is writable again.
    private var owesWritable = false
    /// The channel's writability as last announced to this handler: read per message, so kept here rather than
    /// asking the channel (an atomic load behind an existential) every time.
    private var writable = true
    /// How many session callbacks are on the stack. A host call made from one (a send past the hard limit, say)
    /// can end the connection; the session then hears of it after its callback returns, never re-entrantly.
    private var sessionCallDepth: Int32 = 0
    private var slowCallbackNanoseconds: UInt64 { self.settings.slowCallbackNanoseconds }
    /// Where this connection's loop records the callback it runs (for the watchdog and crash reports: see
    /// `CallbackSlotRegion`), and this endpoint's tag in it. Set in handlerAdded, on the loop.
    private var callbackSlot: CallbackSlot?
    private var callbackTag: UInt64 = 0
    /// State only some connections ever need (see `RareState`); nil until one does.
    private var rareState: RareState?

    private var rateLimiter: MessageRateLimiter?
    /// CoarseClock times of the last frame and the last message from the client.
    private var lastInbound = CoarseClock.nanoseconds()
    private var lastMessage = CoarseClock.nanoseconds()
    /// When our last automatic ping went out, while it waits for any frame from the client (CoarseClock ns).
    private var pingSentAt: UInt64?
    private let sweeper: KeepAliveSweeper?

    convenience init(endpoint: any WebSocketEndpoint, info: ConnectionInfo, configuration: WebSocketConfiguration,
                     registry: ConnectionRegistry, openConnections: OpenConnections, sweeper: KeepAliveSweeper?,
                     logger: Logger) {
        self.init(endpoint: endpoint, info: info,
                  settings: ConnectionSettings(configuration, registry: registry, openConnections: openConnections,
                                               logger: logger),
                  sweeper: sweeper)
    }

    init(endpoint: any WebSocketEndpoint, info: ConnectionInfo, settings: ConnectionSettings,
         sweeper: KeepAliveSweeper?) {
        let configuration = settings.configuration
        self.endpoint = endpoint
        self.pendingInfo = PendingConnectionInfo(info)
        self.route = info.route
        self.settings = settings
        self.sweeper = sweeper
        self.stateMachine = WebSocketConnectionStateMachine(maxMessageSize: configuration.maxMessageSize)
        self.rateLimiter = MessageRateLimiter(rate: configuration.maxMessagesPerSecond, burst: configuration.messageBurst,
                                              now: CoarseClock.nanoseconds())
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        guard let info = self.pendingInfo?.info else { return }
        self.pendingInfo = nil
        self.context = context
        self.writable = context.channel.isWritable
        (self.callbackSlot, self.callbackTag) = CallbackWatch.shared.slot(for: ObjectIdentifier(context.eventLoop),
                                                                          endpoint: self.endpoint.name)
        let connection = WebSocketConnection(eventLoop: context.eventLoop, settings: self.settings,
                                             handler: self)
        self.connection = connection
        connection.register(in: self.registry)
        do {
            let started = CoarseClock.nanoseconds()
            let mark = self.enterCallback(.open, at: started)
            defer { self.leaveCallback(mark) }
            let session = try self.endpoint.openSession(connection: connection, info: info)
            self.checkDuration(since: started, of: "open")
            self.session = session
            connection.attach(session: session)
            self.openConnections.insert(connection)
            if self.openConnections.isShuttingDown {
                // The upgrade finished while the server was already draining: this one goes too.
                self.initiateClose(code: CloseCode.goingAway, reason: "server shutting down")
            }
        } catch {
            self.logger.warning("endpoint refused the connection", metadata: [
                "endpoint": "\(self.endpoint.name)", "route": "\(self.route)", "error": "\(error)",
            ])
            self.registry.unregister(connection.handle)
            connection.didClose()
            self.finished = true  // the endpoint never opened a session: it gets no didClose
            self.writeCloseFrame(context: context, code: CloseCode.internalError, reason: "", thenDisconnect: true)
            return
        }
        self.sweeper?.add(self)
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
        // A failed or finished connection reads nothing more (RFC 6455 7.1.7): its bytes are dropped.
        guard !self.finished else { return }
        var bytes = Self.unwrapInboundIn(data)
        var fromSocket = true
        if var held = self.rareState?.unparsed {
            // The start of a frame from an earlier read, or bytes read while paused: they come first.
            self.rareState!.unparsed = nil
            held.writeBuffer(&bytes)
            bytes = held
            fromSocket = false
        }
        if !self.readingPaused && !self.replayScheduled {
            // Bytes that do not finish a frame still show the peer is alive (a large frame arriving slowly is
            // not a peer that stopped answering pings). The idle timeout still counts whole messages only.
            self.lastInbound = CoarseClock.nanoseconds()
            self.pingSentAt = nil
            self.processFrames(in: &bytes, context: context)
        }
        self.keepUnparsed(bytes, ownedByHandler: !fromSocket, context: context)
    }

    /// Processes the whole frames at the front of `bytes`, in order, until a frame is incomplete, the endpoint
    /// pauses (or resumes: the replay then goes on from where this stopped, after the current work), or the
    /// connection ends.
    private func processFrames(in bytes: inout ByteBuffer, context: ChannelHandlerContext) {
        while !self.readingPaused && !self.replayScheduled && !self.finished {
            let frame: WebSocketFrame?
            do {
                frame = try WebSocketFrameParser.nextFrame(from: &bytes, maxFrameSize: self.configuration.maxFrameSize)
            } catch {
                self.fail(context: context, decodingError: error)
                return
            }
            guard let frame else {
                // Incomplete: a data frame that will take its message past the limit is refused from its header,
                // before its payload fills memory (up to the frame limit) for a message that would be refused.
                if let header = WebSocketFrameParser.header(of: bytes),
                   self.stateMachine.exceedsMessageLimit(opcode: header.opcode, length: header.length),
                   case .fail(let code, let failure) = self.stateMachine.refuseTooLarge() {
                    self.fail(context: context, code: code, failure: failure)
                }
                return
            }
            self.process(frame, context: context)
        }
    }

    /// Keeps what `processFrames` left for the next read or the replay: an incomplete frame, or bytes read while
    /// paused. Bytes straight from a socket read are copied out: NIO's read-buffer pool keeps its own reference to
    /// that buffer, so holding it would make the next read allocate another one (and the pool keep both for the
    /// connection's life), and appending the next read to it would copy these bytes anyway. A buffer this handler
    /// built itself is copied only when most of it is spent.
    private func keepUnparsed(_ bytes: ByteBuffer, ownedByHandler: Bool, context: ChannelHandlerContext) {
        guard bytes.readableBytes > 0, !self.finished else {
            self.releaseRareStateIfUnused()
            return
        }
        var kept = bytes
        if !ownedByHandler || kept.readableBytes <= kept.capacity / 4 {
            var compact = context.channel.allocator.buffer(capacity: kept.readableBytes)
            compact.writeBuffer(&kept)
            kept = compact
        }
        self.rare().unparsed = kept
    }

    private func process(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        let started = CoarseClock.nanoseconds()
        self.lastInbound = started
        self.pingSentAt = nil  // any frame shows the peer is alive
        self.batchingWrites = true
        // Every frame costs a token, not only whole messages: pings (each answered with a pong) and empty
        // continuation frames are work a client could otherwise ask for without limit.
        if self.rateLimiter != nil && !self.finished && !self.rateLimiter!.admit(now: started) {
            Refusals.count(.messageRate)
            self.fail(context: context, code: CloseCode.policyViolation,
                      failure: .policy("more than \(self.configuration.maxMessagesPerSecond) frames per second"))
            return
        }
        switch self.stateMachine.receive(frame) {
        case .none:
            break
        case .deliver(let kind, let data):
            self.lastMessage = started
            self.sessionCallDepth += 1
            let mark = self.enterCallback(.message, at: started)
            self.session?.didReceive(kind: kind, data: data)
            self.leaveCallback(mark)
            self.sessionCallDepth -= 1
            self.checkDuration(since: started, of: "message")
        case .sendPong(let data):
            let pong = WebSocketFrameWriter.frame(opcode: .pong, payload: data, allocator: context.channel.allocator)
            context.write(Self.wrapOutboundOut(pong), promise: nil)
            self.needsFlush = true
        case .fail(let code, let failure):
            self.fail(context: context, code: code, failure: failure)
        case .peerClosed(let code, let reason, let replyCode):
            // Tell the session first: the close below may complete synchronously and run channelInactive.
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
        self.logger.debug("connection error", metadata: ["error": "\(error)"])
        self.finish(code: CloseCode.abnormal, reason: "", failure: .transport("\(error)"))
        context.close(promise: nil)
    }

    /// A frame the parser refused: too long for the configured maximum (1009), or a malformed control frame (1002).
    private func fail(context: ChannelHandlerContext, decodingError error: NIOWebSocketError) {
        if case .invalidFrameLength = error {
            self.fail(context: context, code: CloseCode.messageTooBig,
                      failure: .tooLarge("frame larger than \(self.configuration.maxFrameSize) bytes"))
        } else {
            self.fail(context: context, code: CloseCode.protocolError, failure: .protocolError("\(error)"))
        }
    }

    // MARK: Outbound backpressure

    func read(context: ChannelHandlerContext) {
        // Stop reading from a client whose replies we cannot write: its own sends then back up in the kernel.
        if self.writable && !self.readingPaused {
            context.read()
        } else {
            self.readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.writable = context.channel.isWritable
        self.connection?.channelWritabilityChanged(writable: self.writable)
        if self.writable {
            if self.readPending && !self.readingPaused {
                self.readPending = false
                context.read()
            }
            if self.owesWritable {
                self.owesWritable = false
                self.withBatchedWrites(context: context) { self.callWritable() }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Called by WebSocketConnection (on the event loop)

    /// Queues one complete data frame (from `WebSocketFrameWriter`); flushed at the end of the read burst or soon.
    func writeFrame(_ frame: ByteBuffer) -> ConnectionCallStatus {
        guard let context = self.context, self.stateMachine.state == .open, !self.closeFrameSent else {
            return .closed
        }
        if !self.writable {
            // Already past the high-water mark: past the hard limit the client is not reading at all.
            let buffered = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
            if buffered > self.configuration.outboundHardLimit {
                Refusals.count(.slowReader)
                self.fail(context: context, code: CloseCode.policyViolation,
                          failure: .policy("client not reading: \(buffered) bytes queued"))
                return .closed
            }
        }
        context.write(Self.wrapOutboundOut(frame), promise: nil)
        self.scheduleFlush(context: context)
        // A write that crosses the high-water mark updates `writable` synchronously (channelWritabilityChanged).
        if !self.writable {
            self.owesWritable = true
            return .backpressure
        }
        return .ok
    }

    /// A send from another thread was answered BACKPRESSURE, but the channel is writable by the time its frame
    /// got here: announce writable after the current work (still on this loop), as the status promised.
    func owedWritable() {
        guard let context = self.context else { return }
        if !self.writable {
            self.owesWritable = true
            return
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = loopBound.value
            guard let context = handler.context, handler.writable else { return }
            handler.withBatchedWrites(context: context) { handler.callWritable() }
        }
    }

    func initiateClose(code: UInt16, reason: String) {
        guard let context = self.context, self.stateMachine.closeInitiated(code: code, reason: reason) else { return }
        self.connection?.markClosing()
        self.writeCloseFrame(context: context, code: code, reason: reason)
        self.flushIfNeeded(context: context, force: true)
        // The flush can fail and close the channel at once (finish has then run): no timer for a closed channel.
        guard !self.finished else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.rare().closeTimeout = context.eventLoop.scheduleTask(in: self.configuration.closeTimeout) {
            loopBound.value.close(promise: nil)
        }
        // The client's close frame must be read for the handshake to end.
        self.resumeReading()
    }

    // MARK: Inbound flow control (the endpoint's pause and resume)

    /// Stops processing frames: none is delivered until `resumeReading`, and no more is read from the socket.
    func pauseReading() {
        guard self.context != nil, self.stateMachine.state == .open, !self.closeFrameSent, !self.finished else { return }
        self.readingPaused = true
    }

    /// Processes the bytes held while paused, in order, then reads again, after the current work on the loop:
    /// a host function never calls the session back synchronously (a plugin that resumes from a callback, or while
    /// holding its own lock, must not find on_message or on_close running inside its call). A session call among
    /// the held bytes may pause again: the rest then stay held.
    func resumeReading() {
        guard self.readingPaused, let context = self.context else { return }
        self.readingPaused = false
        self.replayScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { loopBound.value.replayUnparsed() }
    }

    private func replayUnparsed() {
        self.replayScheduled = false
        guard !self.readingPaused, let context = self.context else { return }
        // The client was not heard while paused through no fault of its own: its timeouts start over.
        let now = CoarseClock.nanoseconds()
        self.lastInbound = now
        self.lastMessage = now
        self.pingSentAt = nil
        let wasBatching = self.batchingWrites
        self.batchingWrites = true
        if var bytes = self.rareState?.unparsed {
            self.rareState!.unparsed = nil
            self.processFrames(in: &bytes, context: context)
            self.keepUnparsed(bytes, ownedByHandler: true, context: context)
        }
        self.batchingWrites = wasBatching
        if !wasBatching { self.flushIfNeeded(context: context) }
        self.releaseRareStateIfUnused()
        if !self.readingPaused && self.readPending && self.writable {
            self.readPending = false
            context.read()
        }
    }

    func deliver(event: DeferredEvent, to session: any WebSocketSession) {
        guard let context = self.context else { return }
        let started = CoarseClock.nanoseconds()
        let mark = self.enterCallback(.event, at: started)
        self.withBatchedWrites(context: context) { session.didReceive(event: event) }
        self.leaveCallback(mark)
        self.checkDuration(since: started, of: "event")
    }

    private func callWritable() {
        guard let session = self.session else { return }
        let mark = self.enterCallback(.writable, at: CoarseClock.nanoseconds())
        session.didBecomeWritable()
        self.leaveCallback(mark)
    }

    /// Delivers events while the channel stays writable: see `WebSocketConnection.deliverPaced`.
    func deliverPaced(_ next: () -> DeferredEvent?, to session: any WebSocketSession) -> PacedDelivery {
        guard let context = self.context, self.stateMachine.state == .open, !self.closeFrameSent else { return .closed }
        var result = PacedDelivery.drained
        self.withBatchedWrites(context: context) {
            while true {
                guard self.context != nil, self.stateMachine.state == .open, !self.closeFrameSent else {
                    result = .closed
                    return
                }
                guard self.writable else {
                    result = .blocked
                    return
                }
                guard let event = next() else { return }
                let started = CoarseClock.nanoseconds()
                let mark = self.enterCallback(.event, at: started)
                session.didReceive(event: event)
                self.leaveCallback(mark)
                self.checkDuration(since: started, of: "event")
            }
        }
        return result
    }

    // MARK: Helpers

    /// Records in the loop's slot that a session callback runs (two atomic stores; see `CallbackSlotRegion`).
    @inline(__always)
    private func enterCallback(_ callback: WatchedCallback, at now: UInt64) -> CallbackSlot.Mark? {
        self.callbackSlot?.enter(tag: self.callbackTag | UInt64(callback.rawValue), at: now)
    }

    @inline(__always)
    private func leaveCallback(_ mark: CallbackSlot.Mark?) {
        if let mark { self.callbackSlot?.leave(restoring: mark) }
    }

    /// Logs a session (plugin) callback that ran past the slow-callback threshold: it held up every connection
    /// on this event loop for that long.
    @inline(__always)
    private func checkDuration(since started: UInt64, of callback: StaticString) {
        let elapsed = CoarseClock.nanoseconds() &- started
        if elapsed > self.slowCallbackNanoseconds { self.logSlow(callback: callback, nanoseconds: elapsed) }
    }

    @inline(never)
    private func logSlow(callback: StaticString, nanoseconds: UInt64) {
        self.logger.warning("slow endpoint callback", metadata: [
            "endpoint": "\(self.endpoint.name)", "callback": "\(callback)", "route": "\(self.route)",
            "duration_ms": "\(Double(nanoseconds) / 1e6)",
        ])
    }

    /// Runs a session callback outside a read burst: its writes share one flush at the end.
    private func withBatchedWrites(context: ChannelHandlerContext, _ body: () -> Void) {
        let wasBatching = self.batchingWrites
        self.batchingWrites = true
        self.sessionCallDepth += 1
        body()
        self.sessionCallDepth -= 1
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
        let frame = WebSocketFrameWriter.closeFrame(code: code, reason: reason, allocator: context.channel.allocator)
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
        switch failure {
        case .protocolError: Refusals.count(.protocolError)
        case .invalidData: Refusals.count(.invalidUTF8)
        case .tooLarge: Refusals.count(.tooLarge)
        case .policy, .timeout, .transport: break  // counted where they are detected
        }
        self.finish(code: code, reason: "", failure: failure)
        self.writeCloseFrame(context: context, code: code, reason: "", thenDisconnect: true)
    }

    /// Tells the session the connection is over, exactly once, and releases everything tied to it.
    private func finish(code: UInt16, reason: String, failure: WebSocketFailure?) {
        guard !self.finished else { return }
        self.finished = true
        self.stateMachine.closed()
        self.rareState?.unparsed = nil  // nothing more is processed
        self.cancelTimers()
        self.connection?.markClosing()
        if self.sessionCallDepth > 0, let connection = self.connection {
            // Ended by a host call from inside a session callback: report it once that callback has returned.
            let loopBound = NIOLoopBound(self, eventLoop: connection.eventLoop)
            connection.eventLoop.execute {
                loopBound.value.notifyClosed(code: code, reason: reason, failure: failure)
            }
        } else {
            self.notifyClosed(code: code, reason: reason, failure: failure)
        }
    }

    private func notifyClosed(code: UInt16, reason: String, failure: WebSocketFailure?) {
        if let session = self.session {
            let started = CoarseClock.nanoseconds()
            let mark = self.enterCallback(.close, at: started)
            if let failure { session.didFail(failure) }
            session.didClose(code: code, reason: reason)
            self.leaveCallback(mark)
            self.checkDuration(since: started, of: "close")
        }
        if let connection = self.connection {
            self.openConnections.remove(connection)
            self.registry.unregister(connection.handle)
            connection.didClose()
        }
    }

    // MARK: Keep-alive and idle timers (driven by the loop's KeepAliveSweeper)

    func keepAliveTick(now: UInt64) {
        // Paused by the endpoint: the client cannot be heard, so it is neither pinged nor timed out (the endpoint
        // holds the connection until it resumes).
        guard let context = self.context, self.stateMachine.state == .open, !self.readingPaused, !self.replayScheduled
        else { return }
        let configuration = self.configuration
        if let sentAt = self.pingSentAt {
            if now &- sentAt >= UInt64(configuration.pingTimeout.nanoseconds) {
                // The peer is gone or stuck: a close frame would not be read either, so drop the connection.
                Refusals.count(.pingTimeout)
                self.finish(code: CloseCode.abnormal, reason: "",
                            failure: .timeout("no answer to ping within \(configuration.pingTimeout)"))
                context.close(promise: nil)
                return
            }
        } else if let interval = configuration.pingInterval, now &- self.lastInbound >= UInt64(interval.nanoseconds) {
            var ping = WebSocketFrameWriter.makeBuffer(payloadSize: 8, allocator: context.channel.allocator)
            ping.writeInteger(now)
            WebSocketFrameWriter.finishFrame(&ping, opcode: .ping)
            context.writeAndFlush(Self.wrapOutboundOut(ping), promise: nil)
            self.pingSentAt = now
        }
        if let idle = configuration.idleTimeout, now &- self.lastMessage >= UInt64(idle.nanoseconds) {
            Refusals.count(.idleTimeout)
            let mark = self.enterCallback(.error, at: now)
            self.session?.didFail(.timeout("no message for \(idle)"))
            self.leaveCallback(mark)
            self.initiateClose(code: CloseCode.goingAway, reason: "idle timeout")
        }
    }

    /// Drops the TCP connection at once (the shutdown deadline passed).
    func abort() {
        self.context?.close(promise: nil)
    }

    private func cancelTimers() {
        self.sweeper?.remove(self)
        self.rareState?.closeTimeout?.cancel()
        self.rareState?.closeTimeout = nil
        self.releaseRareStateIfUnused()
    }

    private func rare() -> RareState {
        if let state = self.rareState { return state }
        let state = RareState()
        self.rareState = state
        return state
    }

    /// The bytes held between reads or while paused, and the capacity holding them (for tests: an idle connection
    /// must hold none, and a partial frame no more than its own bytes).
    var unparsedBytes: (count: Int, capacity: Int)? {
        self.rareState?.unparsed.map { ($0.readableBytes, $0.capacity) }
    }

    private func releaseRareStateIfUnused() {
        if let state = self.rareState, state.unparsed == nil, state.closeTimeout == nil { self.rareState = nil }
    }
}

/// What a connection needs only between the reads of one frame, while reading is paused, or while it closes: an
/// idle connection sits between frames, so these live in a box allocated on first use (inline they would cost
/// every connection ~40 bytes).
private final class RareState {
    /// Bytes read but not processed: the start of a frame whose rest has not arrived (at most the frame limit), or
    /// what was read before the endpoint paused (at most one read burst, as reading then stops). Nil when none.
    var unparsed: ByteBuffer?
    /// Closes the connection if the client does not answer our close frame in time.
    var closeTimeout: Scheduled<Void>?
}
