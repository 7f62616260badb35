import AgentHostPluginSDK
import Synchronization

/// One live run of this plugin instance: its state machine, its journal (the run log it writes), its pending
/// input requests and its producer. It holds no frames: they are in the host's run log, and sockets read them
/// from there (`RunStream`). It lives in the `RunRegistry` until it ends.
///
/// Threads: frames are appended by the run's producer (a Swift task); `stop`, answers and deadlines come from
/// event loops, the registry's sweep and, for signals from other generations or workers, host threads. One lock
/// per run keeps the state machine, `seq` and the log's order one.
final class RunRecord: Sendable {
    /// Where the registry finds it: route, owner (the whole identity; anonymous: the resume token) and id.
    let key: RunKey
    /// The starter's address group (`ClientAddressGroup`), for the live-run limit per address.
    let addressGroup: String
    let startedAt: Double
    private let now: @Sendable () -> Double
    private let registry: RunRegistry
    private let state: Mutex<State>

    var id: String { self.key.id }
    var owner: RunOwner { self.key.owner }

    struct State {
        var machine: RunStateMachine
        var journal: RunJournal?
        /// The run's non-chunk events, for the TaskResult AutoGen would build.
        var messages: [String] = []
        /// The producer waiting for each input request (registered just after the request is appended) ...
        var inputs: [String: CheckedContinuation<String, any Error>] = [:]
        /// ... or the answer, if the client was faster than that.
        var answers: [String: String] = [:]
        var producer: Task<Void, Never>?
        /// The stream of this instance the run streams to: a resume on another socket of this instance moves it.
        weak var stream: RunStream?
    }

    init(key: RunKey, addressGroup: String, options: AgentRouteOptions, registry: RunRegistry) {
        self.key = key
        self.addressGroup = addressGroup
        self.now = registry.now
        self.startedAt = registry.now()
        self.registry = registry
        self.state = Mutex(State(machine: RunStateMachine(startedAt: self.startedAt, limits: .init(options))))
    }

    /// Creates the run's log on the starter's socket. Until this succeeds the run has no frames.
    func openJournal(on connection: Connection) throws(RunLogError) {
        // The handler finds the record through a weak reference: the log's signal table must not keep an ended
        // run alive, and a signal that arrives after the run ended finds nothing to do.
        let relay = SignalRelay()
        let journal = try RunJournal(on: connection, runID: self.id, resumeToken: self.key.resumeToken) { bytes in
            relay.record?.apply(RunSignal(bytes))
        }
        relay.record = self
        self.state.withLock { $0.journal = journal }
    }

    var isFinished: Bool { self.state.withLock { $0.machine.isEnded } }
    var isWaitingForInput: Bool { self.state.withLock { $0.machine.phase == .waitingForInput } }
    var lastSeq: Int { self.state.withLock { $0.journal?.lastSeq ?? 0 } }

    func setProducer(_ task: Task<Void, Never>) {
        let cancelNow = self.state.withLock { state -> Bool in
            state.producer = task
            return state.machine.isEnded
        }
        if cancelNow { task.cancel() }
    }

    // MARK: Producing

    /// Appends the run's next frame to its log. Never waits: the host keeps the log in memory and paces each
    /// socket's delivery itself. Throws CancellationError once the run has ended (stopped, timed out): the
    /// producer should wind down.
    func emit(_ event: AgentEvent) async throws {
        let appended = try self.state.withLock { state throws(CancellationError) -> Bool in
            guard !state.machine.isEnded, state.journal != nil else { throw CancellationError() }
            if event.kind == .message { state.messages.append(event.json) }
            return state.journal?.append { ServerFrame.message(event, $0) } ?? false
        }
        if !appended { self.refused() }
    }

    /// Appends `input_request` in stream order and waits for the client's `input_response` (or the input
    /// timeout, or `stop`). Throws CancellationError if the run ends meanwhile.
    func requestInput(prompt: String, requestID: String, event: AgentEvent) async throws -> String {
        let appended = try self.state.withLock { state throws(CancellationError) -> Bool in
            guard state.journal != nil, state.machine.requestInput(requestID, now: self.now()) else {
                throw CancellationError()
            }
            state.messages.append(event.json)
            return state.journal?.append {
                ServerFrame.inputRequest(prompt: prompt, requestID: requestID, event: event, $0)
            } ?? false
        }
        if !appended { self.refused() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let outcome = self.state.withLock { state -> Result<String, any Error>? in
                    if let answer = state.answers.removeValue(forKey: requestID) { return .success(answer) }
                    if state.machine.isEnded || !state.machine.awaiting.contains(where: { $0.id == requestID }) {
                        return .failure(CancellationError())
                    }
                    state.inputs[requestID] = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            self.state.withLock { state in
                state.machine.withdraw(requestID)
                return state.inputs.removeValue(forKey: requestID)
            }?.resume(throwing: CancellationError())
        }
    }

    /// Answers a pending input request (`requestID`, or the oldest when the client named none). False if the run
    /// is not waiting for that input.
    func answer(requestID: String?, response: String) -> Bool {
        let answered = self.state.withLock { state -> (Bool, CheckedContinuation<String, any Error>?) in
            guard case .deliver(let key) = state.machine.answer(requestID: requestID) else { return (false, nil) }
            guard let continuation = state.inputs.removeValue(forKey: key) else {
                state.answers[key] = response
                return (true, nil)
            }
            return (true, continuation)
        }
        answered.1?.resume(returning: response)
        return answered.0
    }

    /// The host refused a frame (the log ended under us, or the frame is over the host's entry limit).
    private func refused() {
        self.finish(.error, reason: "the host's run log refused a frame of this run (larger than its entry limit, or "
            + "the log ended)")
    }

    // MARK: Watching

    /// A socket of this instance streams the run now. Returns the stream it went to before, if any.
    func attach(_ stream: RunStream) -> RunStream? {
        self.state.withLock { state in
            let previous = state.stream
            state.stream = stream
            state.machine.watcherAttached()
            return previous === stream ? nil : previous
        }
    }

    /// A stream stopped (its socket closed, the client moved, or a remote socket said so).
    func detach(_ stream: RunStream?) {
        self.state.withLock { state in
            if let stream, state.stream === stream { state.stream = nil }
            state.machine.watcherDetached(now: self.now())
        }
    }

    /// What a socket of another generation or worker asked through the log (see `RunSignal`), applied as if
    /// local.
    func apply(_ signal: RunSignal?) {
        switch signal {
        case .stop(let reason): self.finish(.cancelled, reason: reason ?? "Cancelled by user")
        case .inputResponse(let requestID, let response): _ = self.answer(requestID: requestID, response: response)
        case .watching(let watcher):
            let deadline = self.now() + RunSignal.watchLease
            self.state.withLock { $0.machine.remoteWatching(watcher ?? "", until: deadline) }
        case .notWatching(let watcher):
            let now = self.now()
            self.state.withLock { $0.machine.remoteNotWatching(watcher ?? "", now: now) }
        case nil: return
        }
    }

    // MARK: Ending

    /// Ends the run with its `result` frame.
    func complete(_ result: AgentRunResult) {
        self.end(.complete) { state, duration in
            let taskResult: String
            switch result {
            case .taskResult(let json):
                taskResult = json
            case .completed(let stopReason):
                taskResult = "{\"messages\":[\(state.messages.joined(separator: ","))],\"stop_reason\":"
                    + (stopReason.map(JSONText.quoted) ?? "null") + "}"
            }
            return { ServerFrame.result(taskResult: taskResult, duration: duration, $0) }
        }
    }

    /// Ends the run with `completion {status}`. A no-op if it already ended: every run has one terminal frame.
    func finish(_ status: CompletionStatus, reason: String) {
        self.end(.stopped(status, reason: reason)) { state, duration in
            let messages = state.messages
            return { ServerFrame.completion(status: status, reason: reason, messages: messages, duration: duration, $0) }
        }
    }

    /// Called by the registry's sweep: ends the run if one of its deadlines passed.
    func checkDeadlines(now: Double) {
        guard let end = self.state.withLock({ $0.machine.tick(now: now) }), case .stopped(let status, let reason) = end
        else { return }
        // The machine has ended; write its terminal frame (ending again is refused, so undo and go through `end`).
        self.writeEnd(end) { state, duration in
            let messages = state.messages
            return { ServerFrame.completion(status: status, reason: reason, messages: messages, duration: duration, $0) }
        }
    }

    private func end(_ end: RunStateMachine.RunEnd,
                     _ terminal: (State, Double) -> (ServerFrame.Envelope) -> String)
    {
        guard self.state.withLock({ $0.machine.end(end) }) != nil else { return }
        self.writeEnd(end, terminal)
    }

    /// Appends the terminal frame of a run the machine just ended, ends its log, and releases what waits on it.
    private func writeEnd(_ end: RunStateMachine.RunEnd, _ terminal: (State, Double) -> (ServerFrame.Envelope) -> String) {
        let duration = self.now() - self.startedAt
        let released = self.state.withLock { state in
            var status = end.logStatus
            let build = terminal(state, duration)
            if state.journal?.append(build) == false {
                // Over the host's entry limit (a TaskResult quoting a long run's every message): a run still gets
                // exactly one terminal frame, the same without the messages (a result becomes an error saying why).
                let (fallback, reason): (CompletionStatus, String)
                switch end {
                case .complete: (fallback, reason) = (.error, "the run's result is larger than the host's run log entry limit")
                case .stopped(let stopped, let why): (fallback, reason) = (stopped, why)
                }
                _ = state.journal?.append {
                    ServerFrame.completion(status: fallback, reason: reason, messages: [], duration: duration, $0)
                }
                status = fallback.rawValue
            }
            defer {
                state.messages = []
                state.inputs = [:]
                state.answers = [:]
            }
            return (journal: state.journal, status: status, inputs: Array(state.inputs.values),
                    producer: state.producer)
        }
        released.journal?.end(status: released.status)
        for input in released.inputs { input.resume(throwing: CancellationError()) }
        released.producer?.cancel()
        self.registry.ended(self)
    }
}

/// The weak link from a log's signal handler to its run. A signal that comes before the link is set (nobody
/// knows the run yet) or after the run is gone finds nil and is dropped.
private final class SignalRelay: Sendable {
    private struct Link { weak var record: RunRecord? }
    private let link = Mutex(Link())

    var record: RunRecord? {
        get { self.link.withLock { $0.record } }
        set { self.link.withLock { $0.record = newValue } }
    }
}
