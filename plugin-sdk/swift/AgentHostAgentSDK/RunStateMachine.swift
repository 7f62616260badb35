/// What a run is doing and when it must end, as a pure value: no locks, no clock reads, no I/O. The caller
/// (`RunRecord`) passes the time in (monotonic seconds from its injected clock) and does what the returned
/// actions say, so every rule here is tested without sockets or sleeps (`RunStateMachineTests`).
///
/// A run is live, waiting for input (live with unanswered `input_request`s), or ended, once. Its deadlines: the
/// run timeout (from its start), one per input request, and the resume grace (from when no socket watches it).
///
/// Watchers: sockets of this instance count until they detach; a socket of another generation or worker counts
/// only while its lease lasts (`remoteWatching(_:until:)`, renewed by its side while it watches), so a remote
/// watcher whose worker died or whose instance was dropped, and that never says `not_watching`, stops keeping
/// the run alive at its lease's deadline (the grace runs from there).
struct RunStateMachine: Sendable {
    struct Limits: Sendable {
        /// 0: no limit.
        var runTimeoutMilliseconds: Int
        var inputTimeoutMilliseconds: Int
        var resumeGraceMilliseconds: Int

        init(runTimeoutMilliseconds: Int, inputTimeoutMilliseconds: Int, resumeGraceMilliseconds: Int) {
            self.runTimeoutMilliseconds = runTimeoutMilliseconds
            self.inputTimeoutMilliseconds = inputTimeoutMilliseconds
            self.resumeGraceMilliseconds = resumeGraceMilliseconds
        }

        init(_ options: AgentRouteOptions) {
            self.init(runTimeoutMilliseconds: options.runTimeoutMilliseconds,
                      inputTimeoutMilliseconds: options.inputTimeoutMilliseconds,
                      resumeGraceMilliseconds: options.resumeGraceMilliseconds)
        }
    }

    enum Phase: Equatable, Sendable {
        case live
        case waitingForInput
        case ended(RunEnd)
    }

    /// How a run ends: its log's end status and, unless it completed, the reason its `completion` frame gives.
    enum RunEnd: Equatable, Sendable {
        case complete
        case stopped(CompletionStatus, reason: String)

        var logStatus: String {
            switch self {
            case .complete: return "complete"
            case .stopped(let status, _): return status.rawValue
            }
        }
    }

    enum AnswerAction: Equatable {
        /// Hand `response` to the producer waiting for `requestID`.
        case deliver(requestID: String)
        /// No such request is pending (or the run ended).
        case notWaiting
    }

    private let limits: Limits
    private let startedAt: Double
    private(set) var ended: RunEnd?
    /// Input requests sent and not yet answered, oldest first, with their deadlines.
    private(set) var awaiting: [(id: String, deadline: Double)] = []
    /// Sockets of this instance watching the run.
    private(set) var watchers = 0
    /// Sockets of other generations or workers watching the run, by the watcher id their signal gave, with the
    /// deadline of their lease.
    private(set) var remoteLeases: [String: Double] = [:]
    /// When the last watcher went away; nil while one watches.
    private var unwatchedSince: Double?

    init(startedAt: Double, limits: Limits) {
        self.startedAt = startedAt
        self.limits = limits
        // Until its starter's socket watches it, a run counts as unwatched: a start whose socket is gone before
        // the watch begins must not live forever.
        self.unwatchedSince = startedAt
    }

    var phase: Phase {
        if let ended = self.ended { return .ended(ended) }
        return self.awaiting.isEmpty ? .live : .waitingForInput
    }

    var isEnded: Bool { self.ended != nil }

    /// The producer sends an `input_request`. False once the run has ended (the producer must wind down).
    mutating func requestInput(_ requestID: String, now: Double) -> Bool {
        guard self.ended == nil else { return false }
        self.awaiting.append((requestID, now + Double(self.limits.inputTimeoutMilliseconds) / 1000))
        return true
    }

    /// The client's `input_response` for `requestID`, or for the oldest pending request when it names none.
    mutating func answer(requestID: String?) -> AnswerAction {
        guard self.ended == nil,
            let index = requestID.map({ id in self.awaiting.firstIndex { $0.id == id } }) ?? (self.awaiting.isEmpty ? nil : 0)
        else { return .notWaiting }
        return .deliver(requestID: self.awaiting.remove(at: index).id)
    }

    /// The producer stopped waiting for `requestID` (its task was cancelled).
    mutating func withdraw(_ requestID: String) {
        self.awaiting.removeAll { $0.id == requestID }
    }

    mutating func watcherAttached() {
        self.watchers += 1
        self.unwatchedSince = nil
    }

    mutating func watcherDetached(now: Double) {
        // Leases that ran out while this socket still watched do not date the unwatched time back.
        self.expireLeases(now: now)
        self.watchers = max(0, self.watchers - 1)
        if self.isUnwatched { self.unwatchedSince = now }
    }

    /// A remote socket watches the run (said so, or renewed its lease): it counts until `deadline`.
    mutating func remoteWatching(_ watcher: String, until deadline: Double) {
        guard self.ended == nil else { return }
        self.remoteLeases[watcher] = max(deadline, self.remoteLeases[watcher] ?? deadline)
        self.unwatchedSince = nil
    }

    /// A remote socket stopped watching (it said so).
    mutating func remoteNotWatching(_ watcher: String, now: Double) {
        self.expireLeases(now: now)
        guard self.remoteLeases.removeValue(forKey: watcher) != nil else { return }
        if self.isUnwatched { self.unwatchedSince = now }
    }

    private var isUnwatched: Bool { self.watchers == 0 && self.remoteLeases.isEmpty }

    /// Drops the leases whose deadline passed; if nobody watches any more, the run is unwatched since the last of
    /// those deadlines (not since now: a sweep that comes late must not lengthen the grace).
    private mutating func expireLeases(now: Double) {
        let expired = self.remoteLeases.filter { $0.value <= now }
        guard !expired.isEmpty else { return }
        for watcher in expired.keys { self.remoteLeases[watcher] = nil }
        if self.isUnwatched, self.unwatchedSince == nil { self.unwatchedSince = expired.values.max() }
    }

    /// Ends the run (`stop`, the producer's result or error, the plugin going away). Returns the end to write,
    /// or nil if it had already ended: every run has exactly one terminal frame.
    mutating func end(_ end: RunEnd) -> RunEnd? {
        guard self.ended == nil else { return nil }
        self.ended = end
        self.awaiting = []
        return end
    }

    /// Ends the run if one of its deadlines passed: the run timeout, an input request's timeout, or the resume
    /// grace with no socket watching.
    mutating func tick(now: Double) -> RunEnd? {
        guard self.ended == nil else { return nil }
        self.expireLeases(now: now)
        let limits = self.limits
        if limits.runTimeoutMilliseconds > 0, now - self.startedAt >= Double(limits.runTimeoutMilliseconds) / 1000 {
            return self.end(.stopped(.timeout, reason: "the run took longer than \(limits.runTimeoutMilliseconds) ms"))
        }
        if self.awaiting.contains(where: { now >= $0.deadline }) {
            return self.end(.stopped(.timeout, reason: "no input_response within \(limits.inputTimeoutMilliseconds) ms"))
        }
        if let since = self.unwatchedSince, now - since >= Double(limits.resumeGraceMilliseconds) / 1000 {
            return self.end(.stopped(.cancelled, reason: "the client went away and did not resume within "
                + "\(limits.resumeGraceMilliseconds) ms"))
        }
        return nil
    }
}
