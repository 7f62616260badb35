import CAgentHostPlugin
import Synchronization

/// A connection for async/await code, shaped like a WebSocketStream: inbound messages as an `AsyncSequence`, a
/// writer that suspends while the client is slow (the host's backpressure), and a close you can await.
///
/// ```swift
/// for await message in connection.messages {
///     try await connection.write(message)
/// }
/// ```
///
/// Each connection's `AsyncPlugin.handle(_:)` runs in its own task; every call here is safe from any task.
public final class AsyncConnection: Sendable {
    public let info: OpenInfo
    /// Inbound messages, in order. Finishes when the connection closes. A handler that falls behind its client
    /// by more than about 1 MiB pauses the connection's reading until it catches up (on hosts with ABI 1.2).
    public let messages: InboundMessages
    /// The raw connection, for timers, posts and logging.
    public let connection: Connection
    private let inbound: AsyncStream<Message>.Continuation
    private let flow: InboundFlow
    private let state = Mutex(State())

    struct State {
        /// Bumped by every on_writable: a writer that saw BACKPRESSURE waits only if none came since its send.
        var writableEvents = 0
        var writers: [CheckedContinuation<Void, any Error>] = []
        var closed: (code: UInt16, reason: String)?
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Why a write did not happen.
    public enum WriteError: Error, Sendable, Equatable {
        /// The connection is closed (`code` is its close code).
        case closed(code: UInt16)
        /// The host refused the message: text that is not UTF-8, or larger than the connection's maximum.
        case refused
    }

    init(connection: Connection, info: OpenInfo) {
        self.connection = connection
        self.info = info
        let (stream, inbound) = AsyncStream.makeStream(of: Message.self)
        self.flow = InboundFlow(pause: { connection.pauseReading() }, resume: { connection.resumeReading() })
        self.messages = InboundMessages(stream: stream, flow: self.flow)
        self.inbound = inbound
    }

    /// Sends one message. Returns once the host has it and the connection's outbound queue is below its
    /// high-water mark: a producer that awaits each write never outruns its client.
    public func write(_ message: Message) async throws {
        let before = self.state.withLock { $0.writableEvents }
        let status: HostStatus
        switch message {
        case .text(let text): status = self.connection.send(text: text)
        case .binary(let bytes): status = self.connection.send(binary: bytes)
        }
        switch status {
        case .ok:
            return
        case .backpressure:
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = self.state.withLock { state -> Result<Void, any Error>? in
                    if let closed = state.closed { return .failure(WriteError.closed(code: closed.code)) }
                    if state.writableEvents != before { return .success(()) }
                    state.writers.append(continuation)
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        case .closed:
            throw WriteError.closed(code: self.state.withLock { $0.closed?.code } ?? 1006)
        default:
            throw WriteError.refused
        }
    }

    public func write(text: String) async throws { try await self.write(.text(text)) }

    /// Starts the close handshake and returns when the connection is closed.
    public func close(code: UInt16 = 1000, reason: String = "") async {
        self.connection.close(code: code, reason: reason)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let closed = self.state.withLock { state -> Bool in
                if state.closed != nil { return true }
                state.closeWaiters.append(continuation)
                return false
            }
            if closed { continuation.resume() }
        }
    }

    /// The close code and reason, once closed.
    public var closeStatus: (code: UInt16, reason: String)? { self.state.withLock { $0.closed } }

    // MARK: From the host (event loop)

    func received(_ message: Message) {
        self.flow.received(message.byteCount)
        self.inbound.yield(message)
    }

    func becameWritable() {
        let writers = self.state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.writableEvents += 1
            defer { state.writers = [] }
            return state.writers
        }
        for writer in writers { writer.resume() }
    }

    func closed(code: UInt16, reason: String) {
        let (writers, waiters) = self.state.withLock { state in
            state.closed = (code, reason)
            defer {
                state.writers = []
                state.closeWaiters = []
            }
            return (state.writers, state.closeWaiters)
        }
        self.inbound.finish()
        for writer in writers { writer.resume(throwing: WriteError.closed(code: code)) }
        for waiter in waiters { waiter.resume() }
    }
}
