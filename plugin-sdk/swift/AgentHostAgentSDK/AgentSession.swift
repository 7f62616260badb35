import AgentHostPluginSDK
import Synchronization

/// One socket of an agent route: reads the client's frames, starts/stops/answers/resumes runs, and is the sink the
/// runs attached to it write to. All callbacks arrive on the connection's event loop; runs write from their own
/// tasks, hence the lock.
///
/// Lock order: a run's lock, then a session's (a run asks its session whether it is blocked while it sends). So
/// the session never asks a run anything while holding its own lock: it copies what it needs out first.
public final class AgentSession: ConnectionHandler, Sendable {
    let connection: Connection
    let info: OpenInfo
    private let core: AgentCore
    /// Who this socket's client is, for run ownership (the whole identity, not the subject alone).
    private let owner: RunOwner
    private let addressGroup: String
    private let state = Mutex(State())

    struct State {
        var writable = WritableGate()
        /// Runs streaming to this socket, by id.
        var runs: [String: RunRecord] = [:]
        /// The run a Studio client means when its frame names none: the last one started or resumed here.
        var latest: RunRecord?
        var invalidFrames = 0
    }

    /// After this many frames that are not valid protocol frames, the socket is closed with 1008.
    static let maxInvalidFrames = 16

    init(connection: Connection, info: OpenInfo, core: AgentCore) {
        self.connection = connection
        self.info = info
        self.core = core
        self.owner = RunOwner(info)
        self.addressGroup = ClientAddressGroup.of(info.remoteAddress)
    }

    /// Taken by a run before each send (see `WritableGate`); nil while the socket is blocked. One lock per frame
    /// answers both questions.
    func writableTicket() -> WritableGate.Ticket? {
        self.state.withLock { $0.writable.isBlocked ? nil : $0.writable.ticket() }
    }

    /// The send begun with `ticket` returned BACKPRESSURE.
    func markBlocked(since ticket: WritableGate.Ticket) {
        self.state.withLock { $0.writable.backpressure(since: ticket) }
    }

    /// The run now streams to another socket (the client resumed it there).
    func forget(_ record: RunRecord) {
        self.state.withLock { state in
            if state.runs[record.id] === record { state.runs[record.id] = nil }
            if state.latest === record { state.latest = nil }
        }
    }

    /// `record` stopped streaming here because this socket does not read (see `RunRecord.cutOffLocked`): close it
    /// as the host's `outbound_hard_limit` does. Its client can resume the run on a new socket. Called without
    /// the run's lock.
    func cutOff(_ record: RunRecord) {
        self.forget(record)
        self.connection.close(code: 1008, reason: "client not reading")
    }

    // MARK: ConnectionHandler

    public func didReceive(_ message: Message) {
        guard case .text(let text) = message else {
            self.connection.close(code: 1003, reason: "agent frames are JSON text")
            return
        }
        do {
            try self.handle(ClientFrame.parse(text))
        } catch let invalid {
            self.refuse(invalid.code, invalid.message, runID: invalid.runID)
            let tooMany = self.state.withLock { state -> Bool in
                state.invalidFrames += 1
                return state.invalidFrames >= Self.maxInvalidFrames
            }
            if tooMany { self.connection.close(code: 1008, reason: "too many invalid frames") }
        }
    }

    public func didBecomeWritable() {
        let runs = self.state.withLock { state -> [RunRecord] in
            state.writable.becameWritable()
            return Array(state.runs.values)
        }
        for run in runs { run.flush() }
    }

    public func didClose(code: UInt16, reason: String) {
        let runs = self.state.withLock { state -> [RunRecord] in
            defer {
                state.runs = [:]
                state.latest = nil
            }
            return Array(state.runs.values)
        }
        for run in runs { run.detach(self) }
    }

    // MARK: Frames

    private func handle(_ frame: ClientFrame) throws(ClientFrame.Invalid) {
        switch frame {
        case .ping:
            self.connection.send(text: ServerFrame.pong())
        case .start(let runID, let task, let teamConfig):
            try self.start(runID: runID, task: task, teamConfig: teamConfig)
        case .stop(let runID, let reason):
            let record = try self.run(named: runID)
            record.finish(.cancelled, reason: reason ?? "Cancelled by user")
        case .inputResponse(let runID, let requestID, let response):
            let here = self.state.withLock { (runs: Array($0.runs.values), latest: $0.latest) }
            let record = try runID.map { id throws(ClientFrame.Invalid) in try self.run(named: id) }
                ?? here.runs.first { $0.isWaitingForInput } ?? here.latest
            guard let record, record.answer(requestID: requestID, response: response) else {
                throw .init(code: .notWaitingForInput, message: "no input request is waiting for this response",
                            runID: runID)
            }
        case .resume(let runID, let lastSeq, let resumeToken):
            try self.resume(runID: runID, lastSeq: lastSeq, resumeToken: resumeToken)
        }
    }

    private func start(runID requested: String?, task: AgentTask, teamConfig: String?) throws(ClientFrame.Invalid) {
        let runID = requested ?? self.core.defaultRunID(forPath: self.info.route)
        // Ended runs leave this socket's table here (the registry keeps them for resume): a socket that runs
        // task after task for hours holds only its live runs.
        let ended = self.state.withLock { Array($0.runs.values) }.filter(\.isFinished)
        let (liveHere, sameID) = self.state.withLock { state -> (Int, Bool) in
            for record in ended where state.runs[record.id] === record { state.runs[record.id] = nil }
            return (state.runs.count, state.runs[runID] != nil)
        }
        // A live run of this socket's (its own: saying so reveals nothing), even an anonymous one, which the
        // registry alone would not see (a new anonymous run gets a new key).
        guard !sameID else { throw .init(code: .runExists, message: "run \(runID) is already running", runID: runID) }
        guard liveHere < self.core.options.maxRunsPerConnection else {
            throw .init(code: .tooManyRuns, message: "this socket already has \(liveHere) live runs", runID: runID)
        }
        let limit = self.core.options.maxTaskBytes
        guard task.json.utf8.count <= limit else {
            throw .init(code: .taskTooLarge, message: "the task is larger than this route's limit of \(limit) bytes",
                        runID: runID)
        }
        // Keyed by route and owner: the same id of another identity is another run (start cannot tell that one
        // exists), and an anonymous starter's run is keyed by a fresh token, so it never meets anyone else's.
        let key = RunKey(route: self.info.route, owner: self.owner,
                         resumeToken: self.owner.isAnonymous ? ResumeToken.make() : nil, id: runID)
        let record = RunRecord(key: key, addressGroup: self.addressGroup, options: self.core.options,
                               registry: self.core.registry)
        do {
            try self.core.registry.insert(record)
        } catch {
            switch error {
            case .exists: throw .init(code: .runExists, message: "run \(runID) is already running", runID: runID)
            case .full(let limit): throw .init(code: .tooManyRuns, message: limit, runID: runID)
            }
        }
        self.state.withLock { state in
            state.runs[runID] = record
            state.latest = record
        }
        _ = try? record.attach(self, after: 0)
        let run = AgentRun(id: runID, task: task,
                           teamConfig: self.core.options.allowClientTeamConfig ? teamConfig : nil,
                           origin: self.info, record: record)
        let core = self.core
        record.setProducer(Task { await core.execute(run) })
    }

    private func resume(runID: String, lastSeq: Int, resumeToken: String?) throws(ClientFrame.Invalid) {
        let record = try self.run(named: runID, resumeToken: resumeToken)
        let previous: AgentSession?
        do {
            previous = try record.attach(self, after: lastSeq)
        } catch {
            guard case .gap(let firstSeq) = error else { return }
            throw .init(code: .resumeGap,
                        message: "frames after \(lastSeq) are no longer buffered (the run's replay buffer or budget "
                            + "dropped them, or the run was forgotten); the oldest kept is \(firstSeq)",
                        runID: runID)
        }
        previous?.forget(record)
        self.state.withLock { state in
            state.runs[runID] = record
            state.latest = record
        }
    }

    /// The run a frame names, or this socket's latest run. A named run is one streaming to this socket, or one
    /// the registry holds for this route and this identity (anonymous clients: for this resume token).
    private func run(named runID: String?, resumeToken: String? = nil) throws(ClientFrame.Invalid) -> RunRecord {
        guard let runID else {
            guard let latest = self.state.withLock({ $0.latest }) else {
                throw .init(code: .unknownRun, message: "no run on this socket")
            }
            return latest
        }
        // This socket's own run (an anonymous client names it without its token here), while the registry has it.
        if let here = self.state.withLock({ $0.runs[runID] }),
            resumeToken == nil || ResumeToken.matches(resumeToken, here.key.resumeToken),
            self.core.registry.lookup(here.key) === here
        {
            return here
        }
        // A run of another identity or route, or an anonymous run without its token, is reported as unknown: its
        // id says nothing to whoever guessed it.
        let key = RunKey(route: self.info.route, owner: self.owner, resumeToken: resumeToken, id: runID)
        guard let record = self.core.registry.lookup(key) else {
            throw .init(code: .unknownRun, message: "no run \(runID)", runID: runID)
        }
        return record
    }

    private func refuse(_ code: ProtocolErrorCode, _ message: String, runID: String?) {
        self.connection.send(text: ServerFrame.error(code, message, runID: runID))
    }
}
