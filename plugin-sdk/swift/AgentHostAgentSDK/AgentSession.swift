import AgentHostPluginSDK
import Synchronization

/// One socket of an agent route: reads the client's frames, starts/stops/answers/resumes runs, and streams the
/// runs it follows by watching their logs (`RunStream`). A run's frames never come from its producer directly:
/// the starter's socket watches the run's log like any resumer, so live and resumed streams are one path.
///
/// Callbacks (frames, watch events) arrive on the connection's event loop; the lock is for the runs' producers
/// and signals, which reach `RunRecord`, never this state.
public final class AgentSession: ConnectionHandler, Sendable {
    let connection: Connection
    let info: OpenInfo
    private let core: AgentCore
    /// Who this socket's client is, for run ownership (the whole identity, not the subject alone). Derived from
    /// `info` when asked rather than stored: an idle socket (most of them) should hold each string once.
    private var owner: RunOwner { RunOwner(self.info) }
    /// Every socket speaks the Studio superset today: the concrete (empty) encoding takes no bytes in each socket's
    /// session, where an existential took 40 (idle sockets are most of them). A second encoding makes this a
    /// per-socket choice.
    private let encoding = StudioWireEncoding()
    private let state = Mutex(State())

    struct State {
        /// Runs streaming to this socket, by id, until their log ends (or the client moves them).
        var streams: [String: RunStream] = [:]
        /// The run a Studio client means when its frame names none: the last one started or resumed here.
        var latest: String?
        /// The resume tokens of the anonymous runs this socket started or resumed: its client names them without
        /// the token here, also once they have ended.
        var tokens: [String: String] = [:]
        var invalidFrames = 0
    }

    /// After this many frames that are not valid protocol frames, the socket is closed with 1008.
    static let maxInvalidFrames = 16
    /// Resume tokens a socket remembers for its client (see `State.tokens`).
    static let maxRememberedTokens = 1024

    init(connection: Connection, info: OpenInfo, core: AgentCore) {
        self.connection = connection
        self.info = info
        self.core = core
    }

    // MARK: Streams (from the watches)

    /// One frame of a run this socket follows.
    func deliver(entry: UnsafeBufferPointer<UInt8>) {
        _ = self.encoding.send(entry: entry, to: self.connection)
    }

    /// The run's log skips from `after` to `firstSeq` in a stream this socket follows: the host's retention
    /// dropped frames before this socket read them (its client reads slower than the run writes, past the host's
    /// bytes per run), or the writer's process died and the frames it appended last never reached the store (the
    /// host numbers its terminal entry 2^20 past the last stored one). The message is true for both.
    func deliverGap(runID: String, after: UInt64, firstSeq: UInt64) {
        self.refuse(.resumeGap, Self.gapMessage(after: after, firstSeq: firstSeq), runID: runID,
                    extra: ",\"first_seq\":\(firstSeq)")
    }

    static func gapMessage(after: UInt64, firstSeq: UInt64) -> String {
        // "Any": after a writer's crash there may have been none (the host skips 2^20 numbers to be sure).
        "any frames after \(after) are not in the run log (retention dropped them, or the server stopped before "
            + "storing them); the stream goes on from \(firstSeq)"
    }

    /// The run a stream followed was deleted by the host's retention before its end was read.
    func deliverGone(runID: String) {
        self.refuse(.unknownRun, "run \(runID) no longer exists (the server's retention deleted it)", runID: runID)
    }

    /// A stream's watch ended (the run's log ended and everything was sent, or it was cancelled).
    func streamEnded(_ stream: RunStream) {
        self.state.withLock { state in
            if state.streams[stream.runID] === stream { state.streams[stream.runID] = nil }
        }
    }

    /// Runs streaming here (what tests check).
    var streamingRunIDs: [String] { self.state.withLock { Array($0.streams.keys) } }

    // MARK: ConnectionHandler

    public func didReceive(_ message: Message) {
        guard case .text(let text) = message else {
            self.connection.close(code: 1003, reason: "agent frames are JSON text")
            return
        }
        do {
            try self.handle(ClientFrame.parse(text))
        } catch let invalid {
            self.refuse(invalid.code, invalid.message, runID: invalid.runID, extra: invalid.extra)
            let tooMany = self.state.withLock { state -> Bool in
                state.invalidFrames += 1
                return state.invalidFrames >= Self.maxInvalidFrames
            }
            if tooMany { self.connection.close(code: 1008, reason: "too many invalid frames") }
        }
    }

    public func didClose(code: UInt16, reason: String) {
        // The host cancels this socket's watches: each stream's end (after on_close) detaches it from its run
        // and releases its handle.
        self.state.withLock { state in
            state.streams = [:]
            state.latest = nil
        }
    }

    // MARK: Frames

    private func handle(_ frame: ClientFrame) throws(ClientFrame.Invalid) {
        switch frame {
        case .ping:
            _ = self.encoding.send(frame: ServerFrame.pong(), to: self.connection)
        case .start(let runID, let task, let teamConfig):
            try self.start(runID: runID, task: task, teamConfig: teamConfig)
        case .stop(let runID, let reason):
            switch try self.target(runID) {
            case .local(let record):
                record.finish(.cancelled, reason: reason ?? "Cancelled by user")
            case .remote(let log, let temporary):
                // NOT_FOUND: the run ended meanwhile; stopping an ended run does nothing, as for a local one.
                try? log.signal(text: RunSignal.stop(reason: reason).json)
                if temporary { log.release() }
            }
        case .inputResponse(let runID, let requestID, let response):
            let answered: Bool
            switch try self.inputTarget(runID) {
            case .local(let record):
                answered = record.answer(requestID: requestID, response: response)
            case .remote(let log, let temporary):
                // The writer answers if it waits for this input; a remote socket cannot know that it does not.
                answered = (try? log.signal(text: RunSignal.inputResponse(requestID: requestID, response: response).json)) != nil
                if temporary { log.release() }
            }
            guard answered else {
                throw .init(code: .notWaitingForInput, message: "no input request is waiting for this response",
                            runID: runID)
            }
        case .resume(let runID, let lastSeq, let resumeToken):
            try self.resume(runID: runID, lastSeq: lastSeq, resumeToken: resumeToken)
        }
    }

    private func start(runID requested: String?, task: AgentTask, teamConfig: String?) throws(ClientFrame.Invalid) {
        let runID = requested ?? self.core.defaultRunID(forPath: self.info.route)
        let (streaming, sameID) = self.state.withLock { ($0.streams.count, $0.streams[runID] != nil) }
        // A run of this socket's (its own: saying so reveals nothing), even an anonymous one.
        guard !sameID else { throw .init(code: .runExists, message: "run \(runID) is already running", runID: runID) }
        guard streaming < self.core.options.maxRunsPerConnection else {
            throw .init(code: .tooManyRuns, message: "this socket already has \(streaming) live runs", runID: runID)
        }
        let limit = self.core.options.maxTaskBytes
        guard task.json.utf8.count <= limit else {
            throw .init(code: .taskTooLarge, message: "the task is larger than this route's limit of \(limit) bytes",
                        runID: runID)
        }
        // An anonymous starter's run is reached by a fresh token (the log's secret), so it never meets anyone
        // else's.
        let key = RunKey(route: self.info.route, owner: self.owner,
                         resumeToken: self.owner.isAnonymous ? ResumeToken.make() : nil, id: runID)
        let record = RunRecord(key: key, addressGroup: ClientAddressGroup.of(self.info.remoteAddress), options: self.core.options,
                               registry: self.core.registry)
        do {
            try self.core.registry.insert(record)
        } catch {
            switch error {
            case .exists: throw .init(code: .runExists, message: "run \(runID) is already running", runID: runID)
            case .full(let limit): throw .init(code: .tooManyRuns, message: limit, runID: runID)
            }
        }
        do {
            try record.openJournal(on: self.connection)
        } catch {
            self.core.registry.ended(record)
            if error.status == .exists {
                // This owner's run with this id (live or ended) is kept in the host's log under it: say so to its
                // owner only (the host names logs by route, owner and key, so nobody else's id is ever taken).
                throw .init(code: .runExists, message: "you already have a run \(runID) on this route: use a new run_id",
                            runID: runID)
            }
            throw .init(code: .unavailable, message: "the run could not be started: \(error)", runID: runID)
        }
        do {
            try self.follow(runID: runID, resumeToken: key.resumeToken, after: 0, record: record, isResume: false)
        } catch {
            // The socket cannot stream it (it is closing): a run nobody can see does not start.
            record.finish(.error, reason: error.message)
            throw error
        }
        let run = AgentRun(id: runID, task: task,
                           teamConfig: self.core.options.allowClientTeamConfig ? teamConfig : nil,
                           origin: self.info, record: record)
        let core = self.core
        record.setProducer(Task { await core.execute(run) })
    }

    private func resume(runID: String, lastSeq: Int, resumeToken: String?) throws(ClientFrame.Invalid) {
        // An anonymous client names its own socket's run without the token.
        let token = resumeToken ?? self.state.withLock { $0.tokens[runID] }
        // Streams on this socket are bounded whether started or resumed: each holds a batch of the run's frames
        // while the client does not read (a resume of a run it streams already replaces that stream).
        let (streaming, sameID) = self.state.withLock { ($0.streams.count, $0.streams[runID] != nil) }
        guard sameID || streaming < self.core.options.maxRunsPerConnection else {
            throw .init(code: .tooManyRuns, message: "this socket already streams \(streaming) runs", runID: runID)
        }
        let record = self.core.registry.lookup(RunKey(route: self.info.route, owner: self.owner, resumeToken: token,
                                                      id: runID))
        try self.follow(runID: runID, resumeToken: token, after: lastSeq, record: record, isResume: true)
    }

    /// Streams the run `runID` to this socket from the frame after `after`: opens its log (any generation's or
    /// worker's, live or ended) and watches it. Replaces this socket's stream of the same run; a local run moves
    /// here from the socket of this instance it streamed to.
    private func follow(runID: String, resumeToken: String?, after: Int, record: RunRecord?,
                        isResume: Bool) throws(ClientFrame.Invalid)
    {
        let reader: RunLog
        do {
            reader = try RunLog.open(on: self.connection, key: runID, secret: resumeToken)
        } catch {
            switch error.status {
            case .closed: throw .init(code: .unknownRun, message: "the socket is closing", runID: runID)
            case .unavailable:
                throw .init(code: .unavailable, message: "the run log cannot be read now; try again", runID: runID)
            default:
                // Another identity's or route's run, or an anonymous run without its token: unknown, whatever it
                // is, so an id says nothing to whoever guessed it.
                throw .init(code: .unknownRun, message: "no run \(runID)", runID: runID)
            }
        }
        var live = record != nil
        if isResume {
            guard let info = try? reader.info() else {
                reader.release()
                throw .init(code: .unavailable, message: "the run log cannot be read now; try again", runID: runID)
            }
            if info.firstSeq > UInt64(after) + 1 {
                reader.release()
                throw .init(code: .resumeGap,
                            message: "frames after \(after) are no longer kept (the host's run log retention dropped "
                                + "them); the oldest kept is \(info.firstSeq)",
                            runID: runID, extra: ",\"first_seq\":\(info.firstSeq)")
            }
            live = !info.ended
        }
        let stream = RunStream(runID: runID, reader: reader, record: record, session: self,
                               registry: self.core.registry, after: UInt64(after))
        do {
            stream.watch = try reader.watch(on: self.connection, after: UInt64(after), stream)
        } catch {
            reader.release()
            throw .init(code: .unknownRun, message: "the run cannot be streamed here: \(error)", runID: runID)
        }
        let replaced = self.state.withLock { state -> RunStream? in
            defer {
                state.streams[runID] = stream
                state.latest = runID
                // Bounded like the socket's refused frames would be: a socket starting runs for hours forgets the
                // oldest tokens (its client has them from each run's first frame).
                if let resumeToken {
                    if state.tokens.count >= Self.maxRememberedTokens { state.tokens.removeAll(keepingCapacity: true) }
                    state.tokens[runID] = resumeToken
                }
            }
            return state.streams[runID]
        }
        replaced?.cancel()
        if let record {
            record.attach(stream)?.cancel()
        } else if live {
            // Written by another generation or worker: tell it a socket watches, for its resume grace. A lease,
            // renewed by this instance's sweep while the stream lasts: if this worker dies or this instance is
            // dropped, the writer stops counting it at the lease's deadline.
            stream.toldWriter = stream.renewLease()
            if stream.toldWriter { self.core.registry.renewWhileWatching(stream, now: self.core.registry.now()) }
        }
    }

    /// Where a frame that names a run (or none: this socket's latest) goes.
    enum Target {
        /// A live run this instance writes.
        case local(RunRecord)
        /// A run written elsewhere, reached through `log` (`temporary`: opened for this frame; release it).
        case remote(RunLog, temporary: Bool)
    }

    private func target(_ runID: String?) throws(ClientFrame.Invalid) -> Target {
        guard let runID = runID ?? self.state.withLock({ $0.latest }) else {
            throw .init(code: .unknownRun, message: "no run on this socket")
        }
        let (stream, token) = self.state.withLock { ($0.streams[runID], $0.tokens[runID]) }
        let key = RunKey(route: self.info.route, owner: self.owner, resumeToken: token, id: runID)
        if let record = stream?.record ?? self.core.registry.lookup(key) { return .local(record) }
        if let stream { return .remote(stream.reader, temporary: false) }
        // Not streaming here: the identity's run by id, or an anonymous run this socket knows the token of.
        if !self.owner.isAnonymous || token != nil, let log = try? RunLog.open(on: self.connection, key: runID, secret: token) {
            return .remote(log, temporary: true)
        }
        throw .init(code: .unknownRun, message: "no run \(runID)", runID: runID)
    }

    /// An `input_response` without a run id answers a local run of this socket that waits for input, else the
    /// latest.
    private func inputTarget(_ runID: String?) throws(ClientFrame.Invalid) -> Target {
        if runID == nil {
            let (records, latest) = self.state.withLock { ($0.streams.values.compactMap(\.record), $0.latest) }
            if let waiting = records.first(where: \.isWaitingForInput) { return .local(waiting) }
            guard latest != nil else {
                throw .init(code: .notWaitingForInput, message: "no input request is waiting for this response")
            }
        }
        return try self.target(runID)
    }

    private func refuse(_ code: ProtocolErrorCode, _ message: String, runID: String?, extra: String = "") {
        _ = self.encoding.send(frame: ServerFrame.error(code, message, runID: runID, extra: extra), to: self.connection)
    }
}
