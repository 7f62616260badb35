import Synchronization

/// Every run of one plugin instance, by run id: runs belong to the instance, not to a socket, so a client on a
/// new socket can find its run again (`resume`).
///
/// Two bounds: live runs (`maxRuns`: a `start` past it is refused) and ended runs kept for resume
/// (`maxRetained`: past it the oldest ended run is forgotten early, so memory stays bounded whatever the rate of
/// runs; each keeps its replay buffer).
final class RunRegistry: Sendable {
    private let state = Mutex(State())
    private let maxRuns: Int
    private let maxRetained: Int

    struct State {
        var runs: [String: RunRecord] = [:]
        /// Ended runs, oldest first (`head` skips the ones already gone).
        var ended: [RunRecord] = []
        var head = 0
        var endedCount = 0
    }

    /// How often deadlines (run and input timeouts, resume grace) are checked: they fire up to this late.
    static let sweepInterval: Duration = .milliseconds(50)

    init(maxRuns: Int, maxRetained: Int) {
        self.maxRuns = maxRuns
        self.maxRetained = maxRetained
        // One sweep per route instead of a sleeping task per run and per input request: at thousands of runs per
        // second, a timer per run (armed, then cancelled) cost more than the runs' frames.
        Task { [weak self] in
            while true {
                try? await Task.sleep(for: Self.sweepInterval)
                guard let self, !self.stopped.load(ordering: .relaxed) else { return }
                self.sweep()
            }
        }
    }

    private let stopped = Atomic<Bool>(false)

    private func sweep() {
        let now = Timestamp.monotonicSeconds()
        let runs = self.state.withLock { Array($0.runs.values) }
        let expired = runs.filter { $0.sweep(now: now) }
        guard !expired.isEmpty else { return }
        self.state.withLock { state in
            for record in expired where state.runs[record.id] === record {
                state.runs[record.id] = nil
                state.endedCount -= 1
            }
            Self.trimLocked(&state)
        }
    }

    enum InsertError: Error {
        case exists
        case full
    }

    /// Adds a new run. An ended run with the same id (kept for resume) is replaced; a live one is not.
    func insert(_ record: RunRecord) throws(InsertError) {
        try self.state.withLock { state throws(InsertError) in
            if let existing = state.runs[record.id] {
                guard existing.isFinished else { throw .exists }
                state.runs[record.id] = nil
                state.endedCount -= 1
            }
            guard state.runs.count - state.endedCount < self.maxRuns else { throw .full }
            state.runs[record.id] = record
        }
    }

    func lookup(_ id: String) -> RunRecord? { self.state.withLock { $0.runs[id] } }

    /// `record` ended: it is kept for its grace period (the sweep forgets it then), or less if too many ended runs
    /// are kept.
    func ended(_ record: RunRecord) {
        self.state.withLock { state in
            guard state.runs[record.id] === record else { return }
            state.endedCount += 1
            state.ended.append(record)
            while state.endedCount > self.maxRetained, state.head < state.ended.count {
                let oldest = state.ended[state.head]
                state.head += 1
                if state.runs[oldest.id] === oldest {
                    state.runs[oldest.id] = nil
                    state.endedCount -= 1
                }
            }
            Self.trimLocked(&state)
        }
    }

    /// Drops the front of `ended` that the sweep already forgot (runs end, and are forgotten, in about that order).
    private static func trimLocked(_ state: inout State) {
        while state.head < state.ended.count, state.runs[state.ended[state.head].id] !== state.ended[state.head] {
            state.head += 1
        }
        if state.head > 1024, state.head * 2 > state.ended.count {
            state.ended.removeFirst(state.head)
            state.head = 0
        }
    }

    /// The instance is going away (plugin replaced or removed): end every live run.
    func cancelAll(reason: String) {
        self.stopped.store(true, ordering: .relaxed)
        for record in self.state.withLock({ Array($0.runs.values) }) {
            record.finish(.cancelled, reason: reason)
        }
    }
}
