import Synchronization

/// The live runs of one plugin instance, by `RunKey` (route, owner, id): what the live-run limits count, what the
/// deadline sweep checks, and how a socket of this instance finds a run it did not start (`stop`, `resume`).
/// Ended runs leave at once: their frames are in the host's run log, which keeps them for resume (the host's
/// retention), so the registry holds no frames and no budgets.
///
/// Limits, from `AgentRouteOptions`: live runs per route (`maxRuns`), per identity and per client address (a
/// `start` past one is refused). They are about live producers (tasks, worker processes), which the run log does
/// not bound.
final class RunRegistry: Sendable {
    private let state = Mutex(State())
    private let options: AgentRouteOptions
    /// Monotonic seconds: what runs measure their deadlines with (tests pass their own clock).
    let now: @Sendable () -> Double

    struct State {
        var live: [RunKey: RunRecord] = [:]
        var liveByOwner: [RunOwner: Int] = [:]
        var liveByAddress: [String: Int] = [:]
        /// Streams of this instance watching runs another generation or worker writes: the sweep renews their
        /// leases (`RunSignal.watchLease`) while they watch.
        var remoteWatches: [ObjectIdentifier: RemoteWatch] = [:]
    }

    struct RemoteWatch {
        weak var stream: RunStream?
        var renewedAt: Double
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

    /// Adds a new live run.
    func insert(_ record: RunRecord) throws(InsertError) {
        try self.state.withLock { state throws(InsertError) in
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
            state.live[record.key] = record
            state.liveByOwner[record.owner, default: 0] += 1
            state.liveByAddress[record.addressGroup, default: 0] += 1
        }
    }

    /// The live run with this key, if this instance writes it.
    func lookup(_ key: RunKey) -> RunRecord? { self.state.withLock { $0.live[key] } }

    /// `record` ended (or never got its log): it no longer counts against any limit.
    func ended(_ record: RunRecord) {
        self.state.withLock { state in
            guard state.live[record.key] === record else { return }
            state.live[record.key] = nil
            Self.decrement(&state.liveByOwner, record.owner)
            Self.decrement(&state.liveByAddress, record.addressGroup)
        }
    }

    var liveCount: Int { self.state.withLock { $0.live.count } }

    /// A live run by id alone, whoever owns it (tests and diagnostics only: clients find runs by `RunKey`).
    func liveRecord(id: String) -> RunRecord? { self.state.withLock { $0.live.values.first { $0.id == id } } }

    /// The instance is going away (plugin replaced or removed): end every live run.
    func cancelAll(reason: String) {
        self.stopped.store(true, ordering: .relaxed)
        for record in self.state.withLock({ Array($0.live.values) }) {
            record.finish(.cancelled, reason: reason)
        }
    }

    /// Checks live runs' deadlines, and renews the leases of remote watches due for it.
    func sweep(now: Double) {
        for record in self.state.withLock({ Array($0.live.values) }) { record.checkDeadlines(now: now) }
        let due = self.state.withLock { state -> [RunStream] in
            var due: [RunStream] = []
            for (id, watch) in state.remoteWatches where now - watch.renewedAt >= RunSignal.watchRenewal {
                guard let stream = watch.stream else {
                    state.remoteWatches[id] = nil
                    continue
                }
                state.remoteWatches[id]?.renewedAt = now
                due.append(stream)
            }
            return due
        }
        for stream in due where !stream.renewLease() { self.stopRenewing(stream) }
    }

    /// `stream` told a remote writer it watches (at `now`): renew its lease until `stopRenewing`.
    func renewWhileWatching(_ stream: RunStream, now: Double) {
        self.state.withLock { $0.remoteWatches[ObjectIdentifier(stream)] = RemoteWatch(stream: stream, renewedAt: now) }
    }

    func stopRenewing(_ stream: RunStream) {
        _ = self.state.withLock { $0.remoteWatches.removeValue(forKey: ObjectIdentifier(stream)) }
    }

    /// Remote watches whose leases the sweep renews (what tests check).
    var renewedWatchCount: Int { self.state.withLock { $0.remoteWatches.count } }

    private static func decrement<Key: Hashable>(_ counts: inout [Key: Int], _ key: Key) {
        let count = counts[key, default: 0] - 1
        counts[key] = count > 0 ? count : nil
    }
}
