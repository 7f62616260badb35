import Synchronization

/// The events of one run waiting for the route's task to take them, bounded in bytes.
///
/// The route takes an event only when the SDK has sent the previous one on (it waits while the client is slow to
/// read), while the worker's reader hands events over as fast as the worker writes them. With an unbounded queue a
/// client that does not read made the host hold every event of its runs (megabytes each when tasks carry images);
/// the SDK's replay budgets bound the frames it keeps, not the events waiting to become frames. An event that
/// arrives while the budget is already used up overflows the run: the queued events are dropped and the run ends
/// with an error. An event arriving under the budget is queued whatever its size (one event is what the worker's
/// line cap bounds), so a run holds at most its budget plus one event; a terminal event (result, error, the
/// worker's loss) is always queued as it is, as the run ends with it anyway.
final class RunEvents: AsyncSequence, Sendable {
    typealias Element = WorkerEvent

    private struct State {
        /// Taken events are set to nil at once (their text is megabytes), and the array is emptied when drained.
        var queue: [(event: WorkerEvent?, bytes: Int)] = []
        var head = 0
        var bytes = 0
        var finished = false
        var waiter: CheckedContinuation<WorkerEvent?, Never>?
    }

    let maxQueuedBytes: Int
    private let state = Mutex(State())

    init(maxQueuedBytes: Int) {
        self.maxQueuedBytes = maxQueuedBytes
    }

    enum PushOutcome {
        case queued
        /// Over the budget: the run now ends with `.backlogged`; the caller stops it on the worker.
        case overflowed
        /// The run already ended (a terminal event, or an overflow): the event is dropped.
        case dropped
    }

    /// Queues `event`, `bytes` long (its line's length); a terminal event finishes the sequence after it.
    func push(_ event: WorkerEvent, bytes: Int) -> PushOutcome {
        let (outcome, waiter, delivered) = self.state.withLock { state -> (PushOutcome, CheckedContinuation<WorkerEvent?, Never>?, WorkerEvent?) in
            guard !state.finished else { return (.dropped, nil, nil) }
            var event = event
            var outcome = PushOutcome.queued
            // Only a budget already used up overflows (an event of any size fits under it), and never at a terminal
            // event: the run ends with that, and its client gets the result (or the real error) after the queue.
            if !event.isTerminal, state.bytes >= self.maxQueuedBytes {
                state.queue = []
                state.head = 0
                state.bytes = 0
                event = .backlogged(reason: "the client is not reading this run's events: more than "
                    + "\(self.maxQueuedBytes) bytes of them were waiting in the host")
                outcome = .overflowed
            }
            if event.isTerminal { state.finished = true }
            if let waiter = state.waiter {
                state.waiter = nil
                return (outcome, waiter, event)
            }
            state.queue.append((event, outcome == .overflowed ? 0 : bytes))
            state.bytes += outcome == .overflowed ? 0 : bytes
            return (outcome, nil, nil)
        }
        waiter?.resume(returning: delivered)
        return outcome
    }

    /// Ends the sequence after the queued events (no terminal event came: the caller reports why first).
    func finish() {
        let waiter = self.state.withLock { state -> CheckedContinuation<WorkerEvent?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The next event; nil once the sequence is finished and drained, or when the waiting task is cancelled.
    func next() async -> WorkerEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WorkerEvent?, Never>) in
                let ready = self.state.withLock { state -> (WorkerEvent?)? in
                    if state.head < state.queue.count {
                        let (event, bytes) = state.queue[state.head]
                        state.queue[state.head].event = nil
                        state.head += 1
                        state.bytes -= bytes
                        if state.head == state.queue.count {
                            state.queue.removeAll(keepingCapacity: true)
                            state.head = 0
                        }
                        return event
                    }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<WorkerEvent?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let events: RunEvents
        mutating func next() async -> WorkerEvent? { await self.events.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(events: self) }
}
