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
    /// How long an ended run stays resumable.
    private let grace: Double

    struct State {
        /// Every run that can be found: the live ones and the ended ones kept for resume.
        var runs: [String: RunRecord] = [:]
        /// The live ones: what the sweep checks deadlines of.
        var live: [String: RunRecord] = [:]
        /// Ended runs in the order they ended, with when (`head` skips the ones already gone). Their grace
        /// periods end in the same order, so forgetting them is popping from the front.
        var ended: [(record: RunRecord, at: Double)] = []
        var head = 0
    }

    /// How often deadlines (run and input timeouts, resume grace) are checked: they fire up to this late.
    static let sweepInterval: Duration = .milliseconds(50)

    init(maxRuns: Int, maxRetained: Int, graceMilliseconds: Int) {
        self.maxRuns = maxRuns
        self.maxRetained = maxRetained
        self.grace = Double(graceMilliseconds) / 1000
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

    enum InsertError: Error {
        case exists
        case full
    }

    /// Adds a new run. An ended run with the same id (kept for resume) is replaced; a live one is not.
    func insert(_ record: RunRecord) throws(InsertError) {
        try self.state.withLock { state throws(InsertError) in
            guard state.live[record.id] == nil else { throw .exists }
            guard state.live.count < self.maxRuns else { throw .full }
            state.runs[record.id] = record
            state.live[record.id] = record
        }
    }

    func lookup(_ id: String) -> RunRecord? { self.state.withLock { $0.runs[id] } }

    /// `record` ended: it stays resumable for the grace period, or less if too many ended runs are kept.
    func ended(_ record: RunRecord) {
        let now = Timestamp.monotonicSeconds()
        self.state.withLock { state in
            guard state.live[record.id] === record else { return }
            state.live[record.id] = nil
            state.ended.append((record, now))
            while state.runs.count - state.live.count > self.maxRetained, self.forgetOldest(&state) {}
        }
    }

    /// The instance is going away (plugin replaced or removed): end every live run.
    func cancelAll(reason: String) {
        self.stopped.store(true, ordering: .relaxed)
        for record in self.state.withLock({ Array($0.live.values) }) {
            record.finish(.cancelled, reason: reason)
        }
    }

    private func sweep() {
        let now = Timestamp.monotonicSeconds()
        for record in self.state.withLock({ Array($0.live.values) }) { record.checkDeadlines(now: now) }
        self.state.withLock { state in
            while state.head < state.ended.count, now - state.ended[state.head].at >= self.grace,
                self.forgetOldest(&state)
            {}
        }
    }

    /// Forgets the run that ended first (unless its id was reused since). False when none is left.
    private func forgetOldest(_ state: inout State) -> Bool {
        guard state.head < state.ended.count else { return false }
        let oldest = state.ended[state.head].record
        state.head += 1
        if state.runs[oldest.id] === oldest { state.runs[oldest.id] = nil }
        if state.head > 1024, state.head * 2 > state.ended.count {
            state.ended.removeFirst(state.head)
            state.head = 0
        }
        return true
    }
}
