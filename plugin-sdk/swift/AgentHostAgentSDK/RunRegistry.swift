import Synchronization

/// Every run of one plugin instance, by `RunKey` (route, owner, id): runs belong to the instance, not to a socket,
/// so a client on a new socket can find its run again (`resume`).
///
/// Bounds, all from `AgentRouteOptions`:
/// - live runs: per route (`maxRuns`), per identity and per client address (a `start` past one is refused);
/// - ended runs kept for resume (`maxRetainedRuns`: past it the oldest is forgotten early);
/// - replay bytes (frames buffered by live and retained runs) per identity and in all: past either, the oldest
///   retained ended runs are forgotten first, then the growing run drops its own oldest frames.
/// A forgotten run's frames are freed at once (`RunRecord.discard`), even if a socket still holds the record.
///
/// Lock order: a run's lock, then the registry's (a run charges its new frames here while it appends). The
/// registry never takes a run's lock while holding its own.
final class RunRegistry: Sendable {
    private let state = Mutex(State())
    private let options: AgentRouteOptions
    /// How long an ended run stays resumable.
    private let grace: Double
    private let now: @Sendable () -> Double

    struct State {
        /// Every run that can be found: the live ones and the ended ones kept for resume.
        var runs: [RunKey: RunRecord] = [:]
        /// The live ones: what the sweep checks deadlines of.
        var live: [RunKey: RunRecord] = [:]
        /// Ended runs in the order they ended, with when (`head` skips the ones already gone; a run forgotten out
        /// of order leaves a nil). Their grace periods end in the same order, so forgetting is popping the front.
        var ended: [(record: RunRecord?, at: Double)] = []
        var head = 0
        var liveByOwner: [RunOwner: Int] = [:]
        var liveByAddress: [String: Int] = [:]
        /// Replay bytes of the runs in `runs`, in all and by holder, and how many retained runs each holder has.
        var bytes = 0
        var bytesByHolder: [ReplayHolder: Int] = [:]
        var endedByHolder: [ReplayHolder: Int] = [:]
    }

    /// How often deadlines (run and input timeouts, resume grace) are checked: they fire up to this late.
    static let sweepInterval: Duration = .milliseconds(50)

    /// - Parameters:
    ///   - now: monotonic seconds (tests pass their own clock and call `sweep(now:)` themselves).
    ///   - sweeps: whether to start the periodic sweep.
    init(options: AgentRouteOptions, now: @escaping @Sendable () -> Double = Timestamp.monotonicSeconds,
         sweeps: Bool = true)
    {
        self.options = options
        self.grace = Double(options.resumeGraceMilliseconds) / 1000
        self.now = now
        guard sweeps else { return }
        // One sweep per route instead of a sleeping task per run and per input request: at thousands of runs per
        // second, a timer per run (armed, then cancelled) cost more than the runs' frames.
        Task { [weak self] in
            while true {
                try? await Task.sleep(for: Self.sweepInterval)
                guard let self, !self.stopped.load(ordering: .relaxed) else { return }
                self.sweep(now: self.now())
            }
        }
    }

    private let stopped = Atomic<Bool>(false)

    enum InsertError: Error {
        case exists
        /// A live-run limit; the text says which.
        case full(String)
    }

    /// Adds a new run. An ended run with the same key (the same owner's, kept for resume) is replaced; a live one
    /// is not.
    func insert(_ record: RunRecord) throws(InsertError) {
        let replaced = try self.state.withLock { state throws(InsertError) -> RunRecord? in
            guard state.live[record.key] == nil else { throw .exists }
            guard state.live.count < self.options.maxRuns else {
                throw .full("the route is at its limit of \(self.options.maxRuns) live runs")
            }
            if !record.owner.isAnonymous, state.liveByOwner[record.owner, default: 0] >= self.options.maxRunsPerIdentity {
                throw .full("this identity already has \(self.options.maxRunsPerIdentity) live runs")
            }
            guard state.liveByAddress[record.addressGroup, default: 0] < self.options.maxRunsPerAddress else {
                throw .full("this client address already has \(self.options.maxRunsPerAddress) live runs")
            }
            let replaced = state.runs[record.key].map { self.removeLocked($0, &state) }
            if let replaced { self.unlistEndedLocked(replaced, &state) }
            state.runs[record.key] = record
            state.live[record.key] = record
            state.liveByOwner[record.owner, default: 0] += 1
            state.liveByAddress[record.addressGroup, default: 0] += 1
            return replaced
        }
        replaced?.discard()
    }

    func lookup(_ key: RunKey) -> RunRecord? { self.state.withLock { $0.runs[key] } }

    /// `record` ended: it stays resumable for the grace period, or less if too many ended runs are kept.
    func ended(_ record: RunRecord) {
        let now = self.now()
        let forgotten = self.state.withLock { state -> [RunRecord] in
            guard state.live[record.key] === record else { return [] }
            state.live[record.key] = nil
            Self.decrement(&state.liveByOwner, record.owner)
            Self.decrement(&state.liveByAddress, record.addressGroup)
            state.ended.append((record, now))
            state.endedByHolder[record.holder, default: 0] += 1
            var forgotten: [RunRecord] = []
            while state.runs.count - state.live.count > self.options.maxRetainedRuns,
                let oldest = self.forgetOldestLocked(&state)
            {
                forgotten.append(oldest)
            }
            return forgotten
        }
        for record in forgotten { record.discard() }
    }

    /// How far over its budgets a run's holder and the route still are (bytes; 0 when within).
    struct Overage {
        var holder = 0
        var route = 0
        /// What the run itself should drop (its oldest frames) to bring both within budget.
        var either: Int { max(self.holder, self.route) }
    }

    /// A run's buffered frames grew (or shrank) by `delta` bytes since it last said (runs report in batches, see
    /// `RunRecord.chargeBatchBytes`, and all of it when they end). Returns how far its holder and the route are
    /// still over budget after the oldest retained ended runs were forgotten (zero when shrinking or within
    /// budget). Called with the run's lock held.
    func charge(_ record: RunRecord, _ delta: Int) -> Overage {
        let (over, forgotten) = self.state.withLock { state -> (Overage, [RunRecord]) in
            guard state.runs[record.key] === record else { return (Overage(), []) }
            state.bytes += delta
            state.bytesByHolder[record.holder, default: 0] += delta
            guard delta > 0 else { return (Overage(), []) }
            var forgotten: [RunRecord] = []
            // The holder's own retained runs first, then anyone's oldest.
            while state.bytesByHolder[record.holder, default: 0] > self.options.maxReplayBytesPerIdentity,
                state.endedByHolder[record.holder, default: 0] > 0,
                let oldest = self.forgetOldestLocked(&state, of: record.holder)
            {
                forgotten.append(oldest)
            }
            while state.bytes > self.options.maxReplayBytes, let oldest = self.forgetOldestLocked(&state) {
                forgotten.append(oldest)
            }
            let over = Overage(
                holder: max(state.bytesByHolder[record.holder, default: 0] - self.options.maxReplayBytesPerIdentity, 0),
                route: max(state.bytes - self.options.maxReplayBytes, 0))
            return (over, forgotten)
        }
        // Safe under the caller's run lock: these runs ended, and an ended run never waits for another's lock.
        for record in forgotten { record.discard() }
        return over
    }

    /// The replay bytes the registry accounts for (frames of every findable run).
    var heldBytes: Int { self.state.withLock { $0.bytes } }

    /// Runs the registry still references, live and retained (what tests check is freed).
    var referencedRuns: Int {
        self.state.withLock { state in
            Set(state.runs.values.map(ObjectIdentifier.init) + state.ended.compactMap { $0.record.map(ObjectIdentifier.init) })
                .count
        }
    }

    /// The instance is going away (plugin replaced or removed): end every live run.
    func cancelAll(reason: String) {
        self.stopped.store(true, ordering: .relaxed)
        for record in self.state.withLock({ Array($0.live.values) }) {
            record.finish(.cancelled, reason: reason)
        }
    }

    /// Checks live runs' deadlines and forgets ended runs whose grace period is over.
    func sweep(now: Double) {
        for record in self.state.withLock({ Array($0.live.values) }) { record.checkDeadlines(now: now) }
        let forgotten = self.state.withLock { state -> [RunRecord] in
            var forgotten: [RunRecord] = []
            while let first = self.firstEndedLocked(&state), now - first.at >= self.grace,
                let oldest = self.forgetOldestLocked(&state)
            {
                forgotten.append(oldest)
            }
            return forgotten
        }
        for record in forgotten { record.discard() }
    }

    // MARK: Internals (lock held)

    /// The oldest ended entry still referenced, skipping (and dropping) the holes in front of it.
    private func firstEndedLocked(_ state: inout State) -> (record: RunRecord?, at: Double)? {
        while state.head < state.ended.count, state.ended[state.head].record == nil { state.head += 1 }
        self.compactLocked(&state)
        return state.head < state.ended.count ? state.ended[state.head] : nil
    }

    /// Takes an ended run out of `ended` (it is replaced by a new run of the same key): nothing keeps it referenced
    /// or counts it as its holder's. From the newest: the replaced run usually ended moments ago.
    private func unlistEndedLocked(_ record: RunRecord, _ state: inout State) {
        var index = state.ended.count
        while index > state.head {
            index -= 1
            if state.ended[index].record === record {
                state.ended[index].record = nil
                Self.decrement(&state.endedByHolder, record.holder)
                return
            }
        }
    }

    /// Forgets the run that ended first (of `holder`, if given). Nil when there is none.
    ///
    /// With a holder this scans `ended` from its oldest (under the registry's lock, on a run's 16 KiB charge):
    /// acceptable because it is called only while the holder is over its budget and has a retained run
    /// (`endedByHolder`, exact), so every scan forgets one run, each ended run is forgotten once, and a scan
    /// reads at most `maxRetainedRuns` entries. A queue per holder would make it O(1) at the cost of keeping a
    /// second order in step with this one on every path that forgets.
    private func forgetOldestLocked(_ state: inout State, of holder: ReplayHolder? = nil) -> RunRecord? {
        guard self.firstEndedLocked(&state) != nil else { return nil }
        var index = state.head
        while index < state.ended.count {
            if let record = state.ended[index].record, holder == nil || record.holder == holder {
                // Drop the reference now: a forgotten run must not stay in memory until the array is compacted.
                state.ended[index].record = nil
                Self.decrement(&state.endedByHolder, record.holder)
                if state.runs[record.key] === record { _ = self.removeLocked(record, &state) }
                return record
            }
            index += 1
        }
        return nil
    }

    /// Takes `record` out of `runs` and its bytes out of the budget.
    private func removeLocked(_ record: RunRecord, _ state: inout State) -> RunRecord {
        state.runs[record.key] = nil
        let bytes = record.heldBytes
        state.bytes -= bytes
        state.bytesByHolder[record.holder, default: 0] -= bytes
        if state.bytesByHolder[record.holder] == 0 { state.bytesByHolder[record.holder] = nil }
        return record
    }

    private func compactLocked(_ state: inout State) {
        if state.head == state.ended.count {
            state.ended.removeAll(keepingCapacity: state.ended.count < 4096)
            state.head = 0
        } else if state.head > 1024, state.head * 2 > state.ended.count {
            state.ended.removeFirst(state.head)
            state.head = 0
        }
    }

    private static func decrement<Key: Hashable>(_ counts: inout [Key: Int], _ key: Key) {
        let count = counts[key, default: 0] - 1
        counts[key] = count > 0 ? count : nil
    }
}
