import Synchronization

/// Inbound flow control for `AsyncConnection`: counts the bytes received and not yet taken by the handler's loop,
/// pauses reading the connection above `highWater` and resumes at or below `lowWater` (ABI 1.2 pause_reading).
/// A handler slower than its client then holds at most about `highWater` bytes (plus one socket read), and the
/// client is slowed by TCP instead of filling the plugin's memory.
///
/// The decision and the host call are made under one lock: a resume decided by the consumer's task and a pause
/// decided on the event loop reach the host in the order they were decided (the host keeps calls from other
/// threads in order with those made on the loop).
final class InboundFlow: Sendable {
    static let defaultHighWater = 1 << 20
    static let defaultLowWater = 256 << 10

    private struct State {
        var buffered = 0
        var paused = false
    }

    private let state = Mutex(State())
    private let highWater: Int
    private let lowWater: Int
    private let pause: @Sendable () -> Void
    private let resume: @Sendable () -> Void

    init(highWater: Int = InboundFlow.defaultHighWater, lowWater: Int = InboundFlow.defaultLowWater,
         pause: @escaping @Sendable () -> Void, resume: @escaping @Sendable () -> Void) {
        self.highWater = highWater
        self.lowWater = lowWater
        self.pause = pause
        self.resume = resume
    }

    /// A message of `bytes` was handed to the stream (on the event loop).
    func received(_ bytes: Int) {
        self.state.withLock { state in
            state.buffered += bytes
            if !state.paused && state.buffered > self.highWater {
                state.paused = true
                self.pause()
            }
        }
    }

    /// The handler took a message of `bytes` from the stream.
    func consumed(_ bytes: Int) {
        self.state.withLock { state in
            state.buffered -= bytes
            if state.paused && state.buffered <= self.lowWater {
                state.paused = false
                self.resume()
            }
        }
    }

    var isPaused: Bool { self.state.withLock { $0.paused } }
}

/// The inbound messages of an `AsyncConnection`, in order; finishes when the connection closes. Taking a message
/// from it is what lets a paused connection be read again (see `InboundFlow`).
public struct InboundMessages: AsyncSequence, Sendable {
    public typealias Element = Message

    let stream: AsyncStream<Message>
    let flow: InboundFlow

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<Message>.AsyncIterator
        let flow: InboundFlow

        public mutating func next() async -> Message? {
            guard let message = await self.base.next() else { return nil }
            self.flow.consumed(message.byteCount)
            return message
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.stream.makeAsyncIterator(), flow: self.flow)
    }
}

extension Message {
    /// The payload's size, which is what flow control counts.
    var byteCount: Int {
        switch self {
        case .text(let text): return text.utf8.count
        case .binary(let bytes): return bytes.count
        }
    }
}
