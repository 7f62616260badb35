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
/// worker's loss) is always queued as it is, as the run ends with it anyway. The runs of one pool also share a
/// total (QueuedEventTotal): over it, the run with the most queued overflows.
final class RunEvents: AsyncSequence, Sendable {
    typealias Element = WorkerEvent

    private struct State {
        /// Taken events are set to nil at once (their text is megabytes), and the array is emptied when drained.
        var queue: [(event: WorkerEvent?, bytes: Int)] = []
        var head = 0
        var bytes = 0
        var finished = false
        /// Ended by the pool's total (its queue, terminal event included, replaced by `.backlogged`).
        var overflowed = false
        var waiter: CheckedContinuation<WorkerEvent?, Never>?
    }

    let maxQueuedBytes: Int
    private let state = Mutex(State())
    private let total: QueuedEventTotal?

    init(maxQueuedBytes: Int, total: QueuedEventTotal? = nil) {
        self.maxQueuedBytes = maxQueuedBytes
        self.total = total
        total?.register(self)
    }

    deinit {
        self.total?.unregister(self)
    }

    /// The bytes queued now.
    var queuedBytes: Int { self.state.withLock { $0.bytes } }

    /// Ends the run with `.backlogged` now, its queued events dropped (the pool's total is over: this run has the
    /// most queued), a queued terminal event too: a run whose client does not read holds its queue after its end.
    /// False if it had already overflowed or has nothing queued.
    @discardableResult
    func overflow(reason: String) -> Bool {
        let (waiter, freed, overflowed) = self.state.withLock { state -> (CheckedContinuation<WorkerEvent?, Never>?, Int, Bool) in
            guard !state.overflowed, state.bytes > 0 else { return (nil, 0, false) }
            state.overflowed = true
            let freed = state.bytes
            state.queue = []
            state.head = 0
            state.bytes = 0
            state.finished = true
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, freed, true)
            }
            state.queue.append((.backlogged(reason: reason), 0))
            return (nil, freed, true)
        }
        self.total?.add(-freed)
        waiter?.resume(returning: .backlogged(reason: reason))
        return overflowed
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
        var added = 0
        var freed = 0
        let (outcome, waiter, delivered) = self.state.withLock { state -> (PushOutcome, CheckedContinuation<WorkerEvent?, Never>?, WorkerEvent?) in
            guard !state.finished else { return (.dropped, nil, nil) }
            var event = event
            var outcome = PushOutcome.queued
            // Only a budget already used up overflows (an event of any size fits under it), and never at a terminal
            // event: the run ends with that, and its client gets the result (or the real error) after the queue.
            if !event.isTerminal, state.bytes >= self.maxQueuedBytes {
                freed = state.bytes
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
            added = outcome == .overflowed ? 0 : bytes
            state.queue.append((event, added))
            state.bytes += added
            return (outcome, nil, nil)
        }
        waiter?.resume(returning: delivered)
        if let total = self.total, added != freed {
            // Outside this run's lock: the total takes the other runs' locks to find the largest queue.
            total.add(added - freed)
        }
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
                var taken = 0
                let ready = self.state.withLock { state -> (WorkerEvent?)? in
                    if state.head < state.queue.count {
                        let (event, bytes) = state.queue[state.head]
                        state.queue[state.head].event = nil
                        state.head += 1
                        state.bytes -= bytes
                        taken = bytes
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
                if taken > 0 { self.total?.add(-taken) }
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

/// The bytes queued in all runs of one pool (RunEvents), against a total: without it, one address with its 128
/// runs and a client that does not read held 128 run budgets (4 GiB at 32 MiB each), charged to nothing. When a
/// push takes the total over, the run with the most queued overflows (ends with `.backlogged`, and the route stops
/// it on its worker), so a pool holds about its total plus one event.
final class QueuedEventTotal: Sendable {
    let max: Int
    private let bytes = Atomic<Int>(0)
    /// The live runs' queues, by identity (weak: a run's queue goes when its route lets go of it).
    private let runs = Mutex<[ObjectIdentifier: Weak]>([:])

    struct Weak: @unchecked Sendable {
        weak var events: RunEvents?
    }

    init(max: Int) {
        self.max = max
    }

    var current: Int { self.bytes.load(ordering: .relaxed) }

    func register(_ events: RunEvents) {
        self.runs.withLock { $0[ObjectIdentifier(events)] = Weak(events: events) }
    }

    func unregister(_ events: RunEvents) {
        _ = self.runs.withLock { $0.removeValue(forKey: ObjectIdentifier(events)) }
    }

    /// Adds `delta` (negative: bytes taken or dropped); a push that takes the total over the maximum overflows the
    /// run with the most queued.
    func add(_ delta: Int) {
        let now = self.bytes.wrappingAdd(delta, ordering: .relaxed).newValue
        guard delta > 0, now > self.max else { return }
        let candidates = self.runs.withLock { $0.values.compactMap(\.events) }
        let largest = candidates.map { ($0, $0.queuedBytes) }.max { $0.1 < $1.1 }
        guard let (victim, queued) = largest, queued > 0 else { return }
        victim.overflow(reason: "the client is not reading this run's events: the AutoGen runs' events waiting "
            + "in the host were over their total (\(self.max) bytes) and this run had the most (\(queued) bytes)")
    }
}
