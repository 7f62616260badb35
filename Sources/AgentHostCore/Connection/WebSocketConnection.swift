import Glibc
import NIOCore
import NIOWebSocket
import Synchronization

/// What a send, close or timer call made of its request.
public enum ConnectionCallStatus: Sendable, Equatable {
    case ok
    /// The message was queued, but the outbound queue is above its high-water mark: slow down until
    /// `WebSocketSession.didBecomeWritable()`.
    case backpressure
    /// The connection is closing or closed; nothing was done.
    case closed
    /// The arguments were refused (bad UTF-8, a close code that may not be sent, a message too large).
    case badArgument
}

/// A deferred event for a session: a posted wake-up, a fired timer, or a run log delivery. `context` is opaque to
/// the host.
public struct DeferredEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case posted
        case timer
        /// A run log watch's entry (`logSeq`, `logBytes`).
        case logEntry
        /// A run log watch's last event (`logSeq`: the last delivered, `logBytes`: the end status).
        case logEnd
        /// A signal for a run log's writer (`logBytes`).
        case logSignal
    }

    public var kind: Kind
    public var id: UInt64
    public var context: UInt
    /// True when the connection closed before delivery; the session already had `didClose`.
    public var cancelled: Bool
    public var logSeq: UInt64 = 0
    public var logBytes: [UInt8] = []

    public init(kind: Kind, id: UInt64, context: UInt, cancelled: Bool, logSeq: UInt64 = 0, logBytes: [UInt8] = []) {
        self.kind = kind
        self.id = id
        self.context = context
        self.cancelled = cancelled
        self.logSeq = logSeq
        self.logBytes = logBytes
    }
}

/// How a paced delivery (`WebSocketConnection.deliverPaced`) ended.
public enum PacedDelivery: Sendable, Equatable {
    /// Every event offered was delivered.
    case drained
    /// The outbound queue is above its high-water mark: wait for `whenWritable`.
    case blocked
    /// The connection is closing or closed.
    case closed
}

/// One open WebSocket connection as endpoints and plugins see it: every method is safe from any thread.
///
/// On the connection's event loop the calls act at once (writes are flushed in batches by the handler); from
/// another thread they hop to the event loop. Nothing here calls the session back synchronously.
public final class WebSocketConnection: @unchecked Sendable {
    // @unchecked: `handler` and `timers` are touched only on `eventLoop` (asserted); everything else is
    // immutable or atomic.

    public let eventLoop: any EventLoop
    /// The registry handle naming this connection; 0 until registered.
    public private(set) var handle: UInt64 = 0
    private let settings: ConnectionSettings
    var configuration: WebSocketConfiguration { self.settings.configuration }

    private let closing = Atomic<Bool>(false)
    /// The channel is past its high-water mark, as last seen on the loop: lets a send from another thread report
    /// BACKPRESSURE for data already queued in the channel, not only for data still on its way to the loop.
    private let channelBlocked = Atomic<Bool>(false)
    // (The two flags sit together: a one-byte atomic between 8-byte ones costs 8 bytes on every connection.)
    private let nextTimerID = Atomic<UInt64>(1)
    /// Bytes sent from other threads that have not reached the event loop yet.
    private let bytesInTransit = Atomic<Int>(0)
    /// Sends and closes queued to the event loop and not run yet. While there are any, a send or close made on
    /// the loop is queued behind them: written at once it would overtake them, and the client would see a
    /// plugin's messages in another order than the plugin sent them (say a run's last chunk after its end).
    private let callsInTransit = Atomic<Int>(0)

    /// The event loop's thread, to tell "on the loop" with one compare: `EventLoop.inEventLoop` goes through a
    /// thread-local lookup, and `send` asks on every message.
    private let loopThread: pthread_t

    /// Loop-bound: the handler doing the I/O; nil once the connection is closed.
    private var handler: WebSocketConnectionHandler?
    /// Loop-bound: timers not fired yet.
    private var timers: [UInt64: (task: Scheduled<Void>, context: UInt)] = [:]
    /// Loop-bound: the session, kept to deliver cancelled events after close.
    private var session: (any WebSocketSession)?
    /// Loop-bound: what waits for the outbound queue to drain (run log watches), run once at writable or close.
    private var writableWaiters: [@Sendable () -> Void] = []

    init(eventLoop: any EventLoop, settings: ConnectionSettings, handler: WebSocketConnectionHandler) {
        eventLoop.preconditionInEventLoop()
        self.eventLoop = eventLoop
        self.settings = settings
        self.handler = handler
        self.loopThread = pthread_self()
    }

    @inline(__always)
    private var onEventLoop: Bool { pthread_equal(pthread_self(), self.loopThread) != 0 }

    func register(in registry: ConnectionRegistry) {
        self.handle = registry.register(self)
    }

    func attach(session: any WebSocketSession) {
        self.session = session
    }

    private static let allocator = ByteBufferAllocator()

    /// Whether a close has started (by either side) or finished.
    public var isClosing: Bool { self.closing.load(ordering: .relaxed) }

    // MARK: Sending

    /// Queues one message, copying `bytes`. Text must be valid UTF-8.
    public func send(kind: WebSocketMessageKind, bytes: UnsafeRawBufferPointer) -> ConnectionCallStatus {
        if self.isClosing { return .closed }
        if bytes.count > self.configuration.outboundHardLimit { return .badArgument }
        if kind == .text && !UTF8Validator.isValid(bytes) { return .badArgument }

        // The copy the ABI promises is also the frame: the header goes in front, in place.
        var frame = WebSocketFrameWriter.makeBuffer(payloadSize: bytes.count, allocator: Self.allocator)
        frame.writeBytes(bytes)
        WebSocketFrameWriter.finishFrame(&frame, opcode: kind == .text ? .text : .binary)

        if self.mayActNow {
            guard let handler = self.handler else { return .closed }
            return handler.writeFrame(frame)
        }
        let message = frame
        let inTransit = self.bytesInTransit.add(bytes.count, ordering: .relaxed).newValue
        let blocked = inTransit > self.configuration.outboundHighWatermark || self.channelBlocked.load(ordering: .relaxed)
        self.enqueueInOrder { connection in
            connection.bytesInTransit.subtract(message.readableBytes, ordering: .relaxed)
            guard let handler = connection.handler else { return }
            let status = handler.writeFrame(message)
            // BACKPRESSURE promises an on_writable. If the channel drained meanwhile, no writability change is
            // coming: the handler announces writable on its own.
            if blocked, status == .ok { handler.owedWritable() }
        }
        return blocked ? .backpressure : .ok
    }

    /// The handler's view of the channel's writability, for sends from other threads.
    func channelWritabilityChanged(writable: Bool) {
        self.channelBlocked.store(!writable, ordering: .relaxed)
        if writable { self.runWritableWaiters() }
    }

    private func runWritableWaiters() {
        guard !self.writableWaiters.isEmpty else { return }
        let waiters = self.writableWaiters
        self.writableWaiters = []
        // After the current handler work: a waiter delivers events, which must not run inside the handler's own
        // writability callback.
        for waiter in waiters { self.eventLoop.execute(waiter) }
    }

    // MARK: Closing

    /// Starts the close handshake. `code` must be sendable on the wire, `reason` at most 123 bytes of UTF-8.
    public func close(code: UInt16, reason: String = "") -> ConnectionCallStatus {
        guard CloseCode.isSendable(code), reason.utf8.count <= 123 else { return .badArgument }
        if self.isClosing { return .closed }
        // In order with sends: a close made after a send must not overtake it on its way to the loop.
        if self.mayActNow {
            self.handler?.initiateClose(code: code, reason: reason)
        } else {
            self.enqueueInOrder { $0.handler?.initiateClose(code: code, reason: reason) }
        }
        return .ok
    }

    /// Drops the TCP connection without a close handshake (used when the shutdown deadline has passed).
    public func abort() {
        self.onLoop { $0.handler?.abort() }
    }

    /// Called by the handler when the close handshake starts, from either side.
    func markClosing() {
        self.closing.store(true, ordering: .relaxed)
    }

    /// Called by the handler once the session had its `didClose`: timers die, the handler is let go.
    func didClose() {
        self.eventLoop.preconditionInEventLoop()
        self.closing.store(true, ordering: .relaxed)
        self.handler = nil
        self.runWritableWaiters()
        let pending = self.timers
        self.timers.removeAll()
        for (id, timer) in pending {
            timer.task.cancel()
            self.handBack(timerID: id, context: timer.context)
        }
    }

    // MARK: Ordering sends and closes

    /// A send or close may act at once only on the loop, and only when none made before it (on another thread)
    /// is still on its way there.
    @inline(__always)
    private var mayActNow: Bool { self.onEventLoop && self.callsInTransit.load(ordering: .relaxed) == 0 }

    /// Runs `body` on the loop after every send and close queued before it. The plugin orders its own calls (one
    /// thread, or its lock), and that order makes this count's increment visible to a later call on the loop.
    private func enqueueInOrder(_ body: @escaping @Sendable (WebSocketConnection) -> Void) {
        self.callsInTransit.add(1, ordering: .relaxed)
        self.eventLoop.execute {
            self.callsInTransit.subtract(1, ordering: .relaxed)
            body(self)
        }
    }

    // MARK: Inbound flow control

    /// Stops delivering the client's frames (and reading its socket) until `resumeReading`. On the event loop it
    /// holds from the moment it returns; from another thread it acts on the loop, in order with the sends and
    /// closes made before it.
    public func pauseReading() -> ConnectionCallStatus {
        self.orderedCall { $0.pauseReading() }
    }

    /// Delivers the frames held while paused, in order, and reads the socket again.
    public func resumeReading() -> ConnectionCallStatus {
        self.orderedCall { $0.resumeReading() }
    }

    private func orderedCall(_ body: @escaping @Sendable (WebSocketConnectionHandler) -> Void) -> ConnectionCallStatus {
        if self.isClosing { return .closed }
        if self.mayActNow {
            guard let handler = self.handler else { return .closed }
            body(handler)
        } else {
            self.enqueueInOrder { connection in connection.handler.map(body) }
        }
        return .ok
    }

    // MARK: Deferred events

    /// Delivers `DeferredEvent(kind: .posted)` to the session on the event loop, after the current callback.
    public func post(id: UInt64, context: UInt) -> ConnectionCallStatus {
        if self.isClosing { return .closed }
        self.eventLoop.execute {
            self.deliver(DeferredEvent(kind: .posted, id: id, context: context, cancelled: false))
        }
        return .ok
    }

    /// Schedules `DeferredEvent(kind: .timer)` after `delay`. Returns the timer id, or nil if closing.
    public func startTimer(after delay: TimeAmount, context: UInt) -> UInt64? {
        if self.isClosing { return nil }
        let id = self.nextTimerID.add(1, ordering: .relaxed).oldValue
        self.onLoop { connection in
            guard !connection.isClosing else { return }
            let task = connection.eventLoop.scheduleTask(in: delay) {
                guard connection.timers.removeValue(forKey: id) != nil else { return }
                connection.deliver(DeferredEvent(kind: .timer, id: id, context: context, cancelled: false))
            }
            connection.timers[id] = (task, context)
        }
        return id
    }

    /// Cancels a timer that has not fired; it is then delivered once with `cancelled` set. On the event loop the
    /// answer is exact (.closed if it already fired); from other threads the request is accepted with .ok.
    public func cancelTimer(_ id: UInt64) -> ConnectionCallStatus {
        if self.isClosing { return .closed }
        if self.eventLoop.inEventLoop {
            guard let timer = self.timers.removeValue(forKey: id) else { return .closed }
            timer.task.cancel()
            self.handBack(timerID: id, context: timer.context)
            return .ok
        }
        self.onLoop { connection in
            guard let timer = connection.timers.removeValue(forKey: id) else { return }
            timer.task.cancel()
            connection.handBack(timerID: id, context: timer.context)
        }
        return .ok
    }

    // MARK: Paced deliveries (run log watches)

    /// On the event loop: delivers events from `next` (nil: no more) to the session while the outbound queue is
    /// below its high-water mark, with one flush at the end. An event taken from `next` is always delivered.
    public func deliverPaced(_ next: () -> DeferredEvent?) -> PacedDelivery {
        self.eventLoop.preconditionInEventLoop()
        guard let handler = self.handler, let session = self.session, !self.isClosing else { return .closed }
        return handler.deliverPaced(next, to: session)
    }

    /// Whether the outbound queue is above its high-water mark (what `whenWritable` waits out).
    public var isOutboundBlocked: Bool { self.handler != nil && self.channelBlocked.load(ordering: .relaxed) }

    /// On the event loop: runs `body` once (on the loop) when the outbound queue is below its high-water mark
    /// again, or the connection closed. At once (after the current work) if it is already.
    public func whenWritable(_ body: @escaping @Sendable () -> Void) {
        self.eventLoop.preconditionInEventLoop()
        if self.handler == nil || !self.channelBlocked.load(ordering: .relaxed) {
            self.eventLoop.execute(body)
        } else {
            self.writableWaiters.append(body)
        }
    }

    /// On the event loop: delivers one event now, or, once the connection closed, as cancelled (the session
    /// already had `didClose`).
    public func deliverNow(_ event: DeferredEvent) {
        self.eventLoop.preconditionInEventLoop()
        self.deliver(event)
    }

    /// A timer that will not fire is still delivered once, cancelled, so the session can release its context.
    private func handBack(timerID: UInt64, context: UInt) {
        self.eventLoop.execute {
            self.session?.didReceive(event: DeferredEvent(kind: .timer, id: timerID, context: context, cancelled: true))
        }
    }

    private func deliver(_ event: DeferredEvent) {
        guard let session = self.session else { return }
        var event = event
        if self.handler == nil {
            // Closed before the event could be delivered: the session hears of it only to free its context.
            event.cancelled = true
            session.didReceive(event: event)
        } else {
            self.handler?.deliver(event: event, to: session)
        }
    }

    private func onLoop(_ body: @escaping @Sendable (WebSocketConnection) -> Void) {
        if self.eventLoop.inEventLoop {
            body(self)
        } else {
            self.eventLoop.execute { body(self) }
        }
    }
}
