import AgentHostPluginSDK
import Synchronization

/// One run: its numbered frames (a bounded replay buffer), the socket it streams to (if any), its pending input
/// requests and its producer. Lives in the `RunRegistry` until a grace period after it ends or loses its socket,
/// so a client can `resume` it on a new socket.
///
/// Threads: frames are appended by the run's producer (a Swift task) and delivered by the host's event loops
/// (writable, resume); one lock per run keeps `seq` and the order of sends the same. Sends happen under the lock:
/// the host's `send` only copies and enqueues, and never calls back.
final class RunRecord: Sendable {
    /// Where the registry finds it: route, owner (the whole identity; anonymous: the resume token) and id.
    let key: RunKey
    /// The starter's address group (`ClientAddressGroup`), for the live-run limit per address.
    let addressGroup: String
    /// Whose replay budget its frames count against.
    let holder: ReplayHolder
    let options: AgentRouteOptions
    let startedAt = Timestamp.monotonicSeconds()
    private let registry: RunRegistry
    private let state = Mutex(State())
    /// `State.bytes`, readable without the run's lock: the registry reads it when it forgets the run.
    private let bytesHeld = Atomic<Int>(0)
    /// The producer waits while this many bytes of its frames are unsent: half the run's buffer, so a slow reader
    /// makes the producer wait well before the buffer is full of frames it cannot drop.
    let unsentByteLimit: Int
    /// `maxUnsentFrames`, at least 1.
    let unsentFrameLimit: Int

    var id: String { self.key.id }
    var owner: RunOwner { self.key.owner }
    var heldBytes: Int { self.bytesHeld.load(ordering: .relaxed) }

    struct State {
        var seq = 0
        /// Frames `firstSeq...seq`, oldest first; `head` skips the ones already evicted.
        var frames: [String] = []
        var head = 0
        var firstSeq = 1
        var bytes = 0
        /// The change in `bytes` not yet reported to the registry (see `chargeBatchBytes`).
        var uncharged = 0
        var session: AgentSession?
        var sentSeq = 0
        /// Bytes of the frames after `sentSeq` (kept exact while a socket is attached; recomputed on attach).
        var unsentBytes = 0
        var finished = false
        /// The run's non-chunk events, for the TaskResult AutoGen would build.
        var messages: [String] = []
        /// Input requests sent and not yet answered, oldest first.
        var awaiting: [String] = []
        /// The producer waiting for each (registered just after the request is sent) ...
        var inputs: [String: CheckedContinuation<String, any Error>] = [:]
        /// ... or the answer, if the client was faster than that.
        var answers: [String: String] = [:]
        var producer: Task<Void, Never>?
        var writeWaiters: [CheckedContinuation<Void, Never>] = []
        /// Deadlines (monotonic seconds), checked by the registry's sweep: the run's own, one per pending input
        /// request, and when it lost its socket.
        var runDeadline: Double?
        var inputDeadlines: [String: Double] = [:]
        var detachedAt: Double?
    }

    init(key: RunKey, addressGroup: String, options: AgentRouteOptions, registry: RunRegistry) {
        self.key = key
        self.addressGroup = addressGroup
        self.holder = ReplayHolder(owner: key.owner, addressGroup: addressGroup)
        self.options = options
        // At least 1: at 0 every emit would wait, also with nothing unsent, for a writable callback never coming.
        self.unsentByteLimit = max(1, min(options.maxUnsentBytes, options.bufferBytes / 2))
        self.unsentFrameLimit = max(1, options.maxUnsentFrames)
        self.registry = registry
        if options.runTimeoutMilliseconds > 0 {
            let deadline = self.startedAt + Double(options.runTimeoutMilliseconds) / 1000
            self.state.withLock { $0.runDeadline = deadline }
        }
    }

    var isFinished: Bool { self.state.withLock { $0.finished } }
    /// Whether the producer's next `emit` waits for the socket to drain.
    var isBacklogged: Bool { self.state.withLock { self.isBackloggedLocked($0) } }

    func setProducer(_ task: Task<Void, Never>) {
        let cancelNow = self.state.withLock { state -> Bool in
            state.producer = task
            return state.finished
        }
        if cancelNow { task.cancel() }
    }

    // MARK: Producing

    /// Appends the run's next frame and sends it to the attached socket. Waits while the socket has
    /// `maxUnsentFrames` of this run's frames, or `unsentByteLimit` bytes of them, still unwritten (backpressure
    /// reaches the producer). Throws CancellationError once the run has ended (stopped, timed out): the producer
    /// should wind down.
    func emit(_ event: AgentEvent) async throws {
        let (mustWait, cut) = try self.state.withLock { state throws(CancellationError) -> (Bool, CutOff?) in
            guard !state.finished else { throw CancellationError() }
            if event.kind == .message { state.messages.append(event.json) }
            let cut = self.appendLocked(&state) { ServerFrame.message(event, $0) }
            return (self.isBackloggedLocked(state), cut)
        }
        cut?.release(self)
        if mustWait { await self.waitForWritable() }
    }

    /// Sends `input_request` in stream order and waits for the client's `input_response` (or the input timeout,
    /// or `stop`). Throws CancellationError if the run ends meanwhile.
    func requestInput(prompt: String, requestID: String, event: AgentEvent) async throws -> String {
        try self.state.withLock { state throws(CancellationError) -> CutOff? in
            guard !state.finished else { throw CancellationError() }
            state.messages.append(event.json)
            state.awaiting.append(requestID)
            state.inputDeadlines[requestID] = Timestamp.monotonicSeconds() + Double(self.options.inputTimeoutMilliseconds) / 1000
            return self.appendLocked(&state) {
                ServerFrame.inputRequest(prompt: prompt, requestID: requestID, event: event, $0)
            }
        }?.release(self)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let outcome = self.state.withLock { state -> Result<String, any Error>? in
                    if let answer = state.answers.removeValue(forKey: requestID) { return .success(answer) }
                    if state.finished || !state.awaiting.contains(requestID) { return .failure(CancellationError()) }
                    state.inputs[requestID] = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            self.state.withLock { state in
                state.awaiting.removeAll { $0 == requestID }
                state.inputDeadlines[requestID] = nil
                return state.inputs.removeValue(forKey: requestID)
            }?.resume(throwing: CancellationError())
        }
    }

    /// Answers a pending input request (`requestID`, or the oldest when the client named none). False if the run
    /// is not waiting for that input.
    func answer(requestID: String?, response: String) -> Bool {
        let answered = self.state.withLock { state -> (Bool, CheckedContinuation<String, any Error>?) in
            guard let key = requestID ?? state.awaiting.first, let index = state.awaiting.firstIndex(of: key) else {
                return (false, nil)
            }
            state.awaiting.remove(at: index)
            state.inputDeadlines[key] = nil
            guard let continuation = state.inputs.removeValue(forKey: key) else {
                state.answers[key] = response
                return (true, nil)
            }
            return (true, continuation)
        }
        answered.1?.resume(returning: response)
        return answered.0
    }

    var isWaitingForInput: Bool { self.state.withLock { !$0.awaiting.isEmpty } }

    // MARK: Ending

    /// Ends the run with its `result` frame.
    func complete(_ result: AgentRunResult) {
        let duration = Timestamp.monotonicSeconds() - self.startedAt
        self.end { state in
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
        let duration = Timestamp.monotonicSeconds() - self.startedAt
        self.end { state in
            let messages = state.messages
            return { ServerFrame.completion(status: status, reason: reason, messages: messages, duration: duration, $0) }
        }
    }

    private func end(_ terminal: (State) -> (ServerFrame.Envelope) -> String) {
        let released = self.state.withLock { state -> (inputs: [CheckedContinuation<String, any Error>],
                                                        waiters: [CheckedContinuation<Void, Never>],
                                                        producer: Task<Void, Never>?, cut: CutOff?)? in
            guard !state.finished else { return nil }
            let cut = self.appendLocked(&state, terminal(state), last: true)
            state.finished = true
            state.inputDeadlines = [:]
            defer {
                state.messages = []  // in the terminal frame now; an ended run holds only its frames
                state.inputs = [:]
                state.awaiting = []
                state.answers = [:]
                state.writeWaiters = []
            }
            return (Array(state.inputs.values), state.writeWaiters, state.producer, cut)
        }
        guard let released else { return }
        released.cut?.release(self)
        for input in released.inputs { input.resume(throwing: CancellationError()) }
        for waiter in released.waiters { waiter.resume() }
        released.producer?.cancel()
        // The result stays resumable for the grace period (the registry's sweep forgets it then).
        self.registry.ended(self)
    }

    // MARK: Sockets

    enum AttachError: Error {
        /// The frames after `lastSeq` are no longer all buffered; `firstSeq` is the oldest still kept.
        case gap(firstSeq: Int)
    }

    /// Streams the run to `session` from the frame after `lastSeq`: first the buffered frames, then live ones.
    /// Returns the session it was attached to before (to tell it), if any.
    func attach(_ session: AgentSession, after lastSeq: Int) throws(AttachError) -> AgentSession? {
        try self.state.withLock { state throws(AttachError) -> AgentSession? in
            let resumeFrom = min(lastSeq, state.seq)
            guard resumeFrom + 1 >= state.firstSeq else { throw .gap(firstSeq: state.firstSeq) }
            let previous = state.session
            state.session = session
            state.sentSeq = resumeFrom
            state.unsentBytes = state.frames[(state.head + resumeFrom + 1 - state.firstSeq)...].reduce(0) {
                $0 + $1.utf8.count
            }
            state.detachedAt = nil
            self.deliverLocked(&state)
            return previous === session ? nil : previous
        }
    }

    /// The socket went away. The run goes on into its buffer; if nobody resumes it within the grace period it is
    /// cancelled (a finished run is simply forgotten then).
    func detach(_ session: AgentSession) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>]? in
            guard state.session === session else { return nil }
            state.session = nil
            state.detachedAt = Timestamp.monotonicSeconds()
            defer { state.writeWaiters = [] }
            return state.writeWaiters
        }
        for waiter in waiters ?? [] { waiter.resume() }
    }

    /// The registry forgot this ended run: free its frames now, even if a socket still holds the record (a resume
    /// through that socket then gets resume_gap).
    func discard() {
        self.state.withLock { state in
            state.firstSeq = state.seq + 1
            state.sentSeq = max(state.sentSeq, state.seq)
            state.frames = []
            state.head = 0
            state.bytes = 0
            state.uncharged = 0
            state.unsentBytes = 0
            state.messages = []
        }
        self.bytesHeld.store(0, ordering: .relaxed)
    }

    /// Called by the registry's sweep for live runs: ends the run if one of its deadlines passed (run timeout,
    /// an input request's timeout, no resume within the grace period).
    func checkDeadlines(now: Double) {
        let grace = Double(self.options.resumeGraceMilliseconds) / 1000
        let expired = self.state.withLock { state -> (CompletionStatus, String)? in
            guard !state.finished else { return nil }
            if let deadline = state.runDeadline, now >= deadline {
                return (.timeout, "the run took longer than \(self.options.runTimeoutMilliseconds) ms")
            }
            if state.inputDeadlines.values.contains(where: { now >= $0 }) {
                return (.timeout, "no input_response within \(self.options.inputTimeoutMilliseconds) ms")
            }
            if let detachedAt = state.detachedAt, now - detachedAt >= grace {
                return (.cancelled, "the client went away and did not resume within \(self.options.resumeGraceMilliseconds) ms")
            }
            return nil
        }
        if let (status, reason) = expired { self.finish(status, reason: reason) }
    }

    /// The attached socket can take more: send what it has not had yet.
    func flush() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            self.deliverLocked(&state)
            guard !self.isBackloggedLocked(state) else { return [] }
            defer { state.writeWaiters = [] }
            return state.writeWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: Internals (lock held)

    /// Frames are reported to the registry's replay budgets in batches of this many bytes (and at the run's end):
    /// one registry lock per frame, shared by every run of the route, cost 5-15% of the agent benchmark's runs/s
    /// at 100 clients. So a live run may be this much over its holder's budget until its next report.
    static let chargeBatchBytes = 16 << 10

    /// A socket cut off for not reading (see `cutOffLocked`) and the producers that were waiting for it to drain:
    /// the caller releases both once the run's lock is released.
    struct CutOff {
        let session: AgentSession
        let waiters: [CheckedContinuation<Void, Never>]

        func release(_ record: RunRecord) {
            self.session.cutOff(record)
            for waiter in self.waiters { waiter.resume() }
        }
    }

    /// Appends a frame, sends what the socket can take, and keeps the run within its limits and budgets. Returns
    /// the socket it cut off for not reading, if any.
    private func appendLocked(_ state: inout State, _ build: (ServerFrame.Envelope) -> String,
                              last: Bool = false) -> CutOff?
    {
        state.seq += 1
        // An anonymous starter gets the run's resume token in its first frame, and nobody else ever does.
        let token = state.seq == 1 ? self.key.resumeToken : nil
        let frame = build(ServerFrame.Envelope(runID: self.id, seq: state.seq, resumeToken: token))
        let size = frame.utf8.count
        state.frames.append(frame)
        state.bytes += size
        state.unsentBytes += size
        // First what the socket can take: only frames it has not had can decide a cut-off below, and the ones it
        // has had can be dropped.
        self.deliverLocked(&state)
        // Bounded replay: drop the oldest frames past the run's limits (a resume from before them gets
        // resume_gap), then past its holder's or the route's budget (the registry first forgets older ended runs).
        state.uncharged += size - self.dropOldestLocked(&state, maxFrames: self.options.bufferFrames,
                                                        maxBytes: self.options.bufferBytes)
        var holderOver = 0
        if last || state.uncharged >= Self.chargeBatchBytes {
            let over = self.registry.charge(self, state.uncharged)
            state.uncharged = 0
            holderOver = over.holder
            if over.either > 0 {
                let dropped = self.dropOldestLocked(&state, maxFrames: self.options.bufferFrames,
                                                    maxBytes: state.bytes - over.either)
                _ = self.registry.charge(self, -dropped)
                holderOver -= dropped
            }
        }
        // A run's unsent frames are bounded by the producer's wait (`unsentByteLimit`, `maxUnsentFrames`). Past
        // the route's budget, which other tenants' runs fill, that bound is all: the run adding a frame is not
        // the one to blame, and cutting it would close a client that reads. Past its own holder's budget, with
        // nothing left to drop but frames its socket has not taken, the socket is what holds them: cut it off.
        var cut: CutOff?
        if holderOver > 0, let cutOff = self.cutOffLocked(&state) {
            cut = cutOff
            let dropped = self.dropOldestLocked(&state, maxFrames: self.options.bufferFrames,
                                                maxBytes: min(self.options.bufferBytes, state.bytes - holderOver))
            _ = self.registry.charge(self, -dropped)
        }
        self.bytesHeld.store(state.bytes, ordering: .relaxed)
        if state.head > 1024 && state.head * 2 > state.frames.count {
            state.frames.removeFirst(state.head)
            state.head = 0
        }
        return cut
    }

    /// The run is over its holder's replay budget and what it could not drop are frames its socket has not had: a
    /// socket blocked (the client does not read) while the run goes on. Ends that attachment the way the host's
    /// `outbound_hard_limit` does (the caller closes the socket with 1008); the run goes on detached, and its
    /// oldest frames can be dropped again (a resume from before them gets resume_gap). Nil if the socket is not
    /// what holds the frames.
    private func cutOffLocked(_ state: inout State) -> CutOff? {
        guard let session = state.session, state.frames.count - state.head > 1, state.firstSeq > state.sentSeq else {
            return nil
        }
        state.session = nil
        state.detachedAt = Timestamp.monotonicSeconds()
        // As `detach` does: the socket's didClose will find the run detached already and release nothing.
        defer { state.writeWaiters = [] }
        return CutOff(session: session, waiters: state.writeWaiters)
    }

    /// Drops the oldest frames while more than `maxFrames` or `maxBytes` are kept, always keeping the newest.
    /// Returns the bytes dropped.
    private func dropOldestLocked(_ state: inout State, maxFrames: Int, maxBytes: Int) -> Int {
        var dropped = 0
        // Never a frame the attached socket has not had yet: a live socket loses nothing.
        while state.frames.count - state.head > 1, state.session == nil || state.firstSeq <= state.sentSeq,
            state.frames.count - state.head > maxFrames || state.bytes > maxBytes
        {
            let size = state.frames[state.head].utf8.count
            state.bytes -= size
            if state.firstSeq > state.sentSeq { state.unsentBytes -= size }
            dropped += size
            state.frames[state.head] = ""
            state.head += 1
            state.firstSeq += 1
        }
        return dropped
    }

    private func deliverLocked(_ state: inout State) {
        guard let session = state.session else { return }
        if state.sentSeq < state.firstSeq - 1 { state.sentSeq = state.firstSeq - 1 }
        while state.sentSeq < state.seq, let ticket = session.writableTicket() {
            let frame = state.frames[state.head + (state.sentSeq + 1 - state.firstSeq)]
            switch session.connection.send(text: frame) {
            case .ok:
                state.sentSeq += 1
                state.unsentBytes -= frame.utf8.count
            case .backpressure:
                state.sentSeq += 1  // queued: the host has it
                state.unsentBytes -= frame.utf8.count
                session.markBlocked(since: ticket)
            default:
                return  // closed: the session's didClose detaches this run
            }
        }
    }

    private func isBackloggedLocked(_ state: State) -> Bool {
        state.session != nil
            && (state.seq - state.sentSeq >= self.unsentFrameLimit || state.unsentBytes >= self.unsentByteLimit)
    }

    private func waitForWritable() async {
        await withCheckedContinuation { continuation in
            let wait = self.state.withLock { state -> Bool in
                guard self.isBackloggedLocked(state), !state.finished else { return false }
                state.writeWaiters.append(continuation)
                return true
            }
            if !wait { continuation.resume() }
        }
    }
}
