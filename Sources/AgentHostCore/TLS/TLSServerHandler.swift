import NIOCore

/// The server side of TLS in the pipeline, over BoringSSL (`TLSSession`).
///
/// Written here rather than using swift-nio-ssl's `NIOSSLHandler` for memory: that handler allocates, when it is
/// added, a 32 KiB plaintext buffer, a 16 KiB record buffer and a 96-entry action ring, and keeps all three for the
/// connection's life (none is configurable in 2.37). Agent UIs hold a socket per browser tab, mostly idle: measured
/// with `agenthost-bench`, that was ~19 KiB of resident memory per idle wss connection over plain ws. This handler
/// keeps a buffer only while it holds bytes: decrypted input goes up in a buffer sized by the ciphertext it came from,
/// encrypted output is collected per flush and handed to the socket whole. Like `NIOSSLHandler` it encrypts each write
/// as it comes and writes once per flush, so the hot path still makes one socket write per batch.
///
/// Differences from `NIOSSLHandler`, on purpose: close sends close_notify and closes without waiting for the peer's
/// (WebSocket has its own close handshake; HTTP/1.1 servers do the same); a peer's close_notify closes the connection
/// (the server allows no half-closure). There is no renegotiation (BoringSSL servers never renegotiate). It cannot be
/// removed from a live pipeline: the bytes after it would be ciphertext nobody decrypts.
final class TLSServerHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case handshaking
        case active
        /// close_notify is sent (a close of the output): reads go on, writes fail.
        case outputClosed
        case closed
    }

    /// The configured BoringSSL context this connection's session is made from (named apart from NIO's contexts).
    private let serverContext: TLSServerContext
    private var session: TLSSession?
    private var state = State.handshaking
    /// Writes issued before the handshake finished (rare: the server speaks only after the client's request).
    private var writesBeforeHandshake: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushBeforeHandshake = false
    /// Promises of writes encrypted into the session's output but not yet handed to the socket.
    private var pendingPromises: [EventLoopPromise<Void>] = []
    private var deliveredSinceReadComplete = false

    /// Ciphertext collected past this much goes to the channel without waiting for the flush (see `write`).
    static let handOverBytes = 64 * 1024

    init(context: TLSServerContext) {
        self.serverContext = context
    }

    /// The client certificate BoringSSL verified, DER-encoded (mTLS); nil without one.
    func peerCertificateDER() -> [UInt8]? {
        guard case .active = self.state else { return nil }
        return self.session?.peerCertificateDER()
    }

    /// Bytes of buffers the handler holds outside BoringSSL (for tests: 0 between reads of an idle connection).
    var heldBufferCapacity: Int {
        (self.session?.heldBufferCapacity ?? 0) + self.writesBeforeHandshake.reduce(0) { $0 + $1.0.capacity }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        do {
            self.session = try TLSSession(context: self.serverContext, allocator: context.channel.allocator)
        } catch {
            self.state = .closed
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.failPending(ChannelError.ioOnClosedChannel)
        self.session = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session = self.session, self.readsInput else { return }
        var ciphertext = self.unwrapInboundIn(data)
        session.receive(&ciphertext)
        if case .handshaking = self.state {
            switch session.handshake() {
            case .needsMoreInput:
                self.writeCiphertext(context: context, flush: true)
                self.readAgainIfNeeded(context: context)
                return
            case .failed(let error):
                self.fail(context: context, error: error)
                return
            case .complete:
                self.state = .active
                self.writeCiphertext(context: context, flush: true)
                self.replayWritesBeforeHandshake(context: context)
                guard self.readsInput else { return }
            }
        }
        let before = session.outbound?.writerIndex
        let (plaintext, end) = session.readPlaintext()
        // Reading can write to the peer (an alert): send that now. Application writes made before this read wait
        // for their own flush, so replies to many messages in one socket read still go out together. (BoringSSL
        // queues the answer to a KeyUpdate until the next write, which RFC 8446 allows.)
        let answered = session.outbound?.writerIndex != before
        if let plaintext {
            self.deliveredSinceReadComplete = true
            context.fireChannelRead(self.wrapInboundOut(plaintext))
        } else {
            self.readAgainIfNeeded(context: context)
        }
        guard self.readsInput else { return }
        switch end {
        case .needsMoreInput:
            if answered { self.writeCiphertext(context: context, flush: true) }
        case .closedByPeer:
            if self.deliveredSinceReadComplete {
                self.deliveredSinceReadComplete = false
                context.fireChannelReadComplete()
            }
            self.closeSession(context: context, mode: .all, promise: nil)
        case .failed(let error):
            self.fail(context: context, error: error)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard self.deliveredSinceReadComplete else { return }
        self.deliveredSinceReadComplete = false
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.state = .closed
        self.failPending(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plaintext = self.unwrapOutboundIn(data)
        switch self.state {
        case .handshaking:
            self.writesBeforeHandshake.append((plaintext, promise))
        case .active:
            guard let session = self.session else {
                promise?.fail(ChannelError.ioOnClosedChannel)
                return
            }
            if let error = session.write(plaintext) {
                promise?.fail(error)
                self.fail(context: context, error: error)
                return
            }
            if let promise { self.pendingPromises.append(promise) }
            // Hand large output to the channel before the flush: NIO counts a connection's pending bytes, and so
            // its writability and the WebSocket layer's backpressure and hard limit, at write time. Output held
            // here until the flush would be invisible to them (a plugin sending megabytes in one callback).
            if session.outboundBytes >= Self.handOverBytes { self.writeCiphertext(context: context, flush: false) }
        case .outputClosed, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if case .handshaking = self.state {
            self.flushBeforeHandshake = true
        } else {
            self.writeCiphertext(context: context, flush: true)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        self.closeSession(context: context, mode: mode, promise: promise)
    }

    // MARK: Helpers

    private var readsInput: Bool {
        switch self.state {
        case .handshaking, .active, .outputClosed: return true
        case .closed: return false
        }
    }

    private func closeSession(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input else {
            context.close(mode: mode, promise: promise)
            return
        }
        let wasActive: Bool
        if case .active = self.state { wasActive = true } else { wasActive = false }
        // The state changes first: a write from a promise completed by the flush below (NIO completes them inside
        // flush) must find the output closed, not reach BoringSSL after close_notify.
        if mode == .all {
            self.state = .closed
        } else if wasActive {
            self.state = .outputClosed
        }
        if wasActive {
            // close_notify after whatever was written: the peer sees every byte, then a clean end.
            self.session?.shutdown()
            self.writeCiphertext(context: context, flush: true)
        }
        if mode == .all { self.failPending(ChannelError.ioOnClosedChannel) }
        context.close(mode: mode, promise: promise)
    }

    private func fail(context: ChannelHandlerContext, error: TLSError) {
        self.state = .closed
        // The alert BoringSSL queued tells the client why; then the connection ends.
        self.writeCiphertext(context: context, flush: true)
        self.failPending(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    /// Hands the session's ciphertext to the socket as one buffer, completing the promises of the writes in it. Writes
    /// of no bytes (NIO's HTTP encoder ends a response with one) produced no ciphertext: their promises travel on an
    /// empty write, so they complete in order with the bytes written before them.
    private func writeCiphertext(context: ChannelHandlerContext, flush: Bool) {
        if let ciphertext = self.session?.takeCiphertext() {
            context.write(self.wrapOutboundOut(ciphertext), promise: self.combinedPendingPromise(context: context))
        } else if !self.pendingPromises.isEmpty {
            context.write(self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)),
                          promise: self.combinedPendingPromise(context: context))
        }
        if flush { context.flush() }
    }

    private func combinedPendingPromise(context: ChannelHandlerContext) -> EventLoopPromise<Void>? {
        switch self.pendingPromises.count {
        case 0:
            return nil
        case 1:
            defer { self.pendingPromises.removeAll() }
            return self.pendingPromises[0]
        default:
            let promises = self.pendingPromises
            self.pendingPromises = []
            let combined = context.eventLoop.makePromise(of: Void.self)
            combined.futureResult.whenComplete { result in promises.forEach { $0.completeWith(result) } }
            return combined
        }
    }

    private func replayWritesBeforeHandshake(context: ChannelHandlerContext) {
        let writes = self.writesBeforeHandshake
        self.writesBeforeHandshake = []
        for (plaintext, promise) in writes {
            self.write(context: context, data: self.wrapOutboundOut(plaintext), promise: promise)
        }
        if self.flushBeforeHandshake {
            self.flushBeforeHandshake = false
            self.flush(context: context)
        }
    }

    /// With auto-read off, a read that yielded no plaintext (a partial record, a handshake step) must ask for the
    /// next one itself: the handler above saw nothing and will not ask.
    private func readAgainIfNeeded(context: ChannelHandlerContext) {
        guard let autoRead = try? context.channel.syncOptions?.getOption(ChannelOptions.autoRead), !autoRead else {
            return
        }
        context.read()
    }

    private func failPending(_ error: any Error) {
        let writes = self.writesBeforeHandshake
        let promises = self.pendingPromises
        self.writesBeforeHandshake = []
        self.pendingPromises = []
        _ = self.session?.takeCiphertext()
        writes.forEach { $0.1?.fail(error) }
        promises.forEach { $0.fail(error) }
    }
}
