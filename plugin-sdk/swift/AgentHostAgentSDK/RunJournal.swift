import AgentHostPluginSDK

/// A run's frames in the host's run log: the log's one writer. Every frame the run produces is appended here
/// (Studio-superset JSON, see `ServerFrame`) with `seq` equal to the log's own sequence number, so a resume
/// reads the same bytes the live stream sent. Sockets never get frames from here: they watch the log
/// (`RunStream`), the starter's socket too.
///
/// Not locked: its owner (`RunRecord`) appends under the run's lock, which keeps `seq` and the log's order one.
struct RunJournal: Sendable {
    /// The log key: the run id. The host scopes it to the route and the owner's identity
    /// (anonymous runs: to `resumeToken`, the log's secret).
    let runID: String
    /// Anonymous runs only: the secret the log was created with, sent to the starter in the first frame.
    let resumeToken: String?
    let log: RunLog
    private(set) var lastSeq = 0

    /// Creates the run's log on the route of the starter's socket.
    /// - Throws: `.exists` when this owner already has a log with this run id on the route.
    init(on connection: Connection, runID: String, resumeToken: String?,
         onSignal: @escaping @Sendable (UnsafeBufferPointer<UInt8>) -> Void) throws(RunLogError)
    {
        self.runID = runID
        self.resumeToken = resumeToken
        self.log = try RunLog.create(on: connection, key: runID, secret: resumeToken, onSignal: onSignal)
    }

    /// Appends the next frame, built for its sequence number. False when the host refused it (the log ended, or
    /// the frame is over its entry limit): the caller ends the run.
    mutating func append(_ build: (ServerFrame.Envelope) -> String) -> Bool {
        let seq = self.lastSeq + 1
        // An anonymous starter gets the resume token in the run's first frame, and nobody else ever does.
        let frame = build(ServerFrame.Envelope(runID: self.runID, seq: seq, resumeToken: seq == 1 ? self.resumeToken : nil))
        guard let appended = try? self.log.append(text: frame) else { return false }
        // One writer: the host numbers entries as we do. Follow its number if it ever differs.
        self.lastSeq = Int(appended)
        return true
    }

    /// Ends the log with the run's status and gives the writer handle back.
    func end(status: String) {
        try? self.log.end(status: status)
        self.log.release()
    }
}
