import AgentHostPluginSDK

/// One run streaming to one socket: the socket's own handle on the run's log and its watch. Live streams and
/// resumed ones are this one path (the starter's socket watches the log too), and the host paces delivery by the
/// socket's outbound queue, so a socket that does not read holds nothing of the run's.
///
/// All calls arrive on the socket's event loop. Kept alive by its watch (the SDK releases it at the watch's one
/// end), which releases the handle.
final class RunStream: RunLogWatcher, @unchecked Sendable {
    // @unchecked: `watch` and `toldWriter` are written on the socket's event loop before the watch can deliver,
    // and read there afterwards; the rest is immutable.
    let runID: String
    let reader: RunLog
    /// The live run, when this plugin instance writes it.
    let record: RunRecord?
    private weak var session: AgentSession?
    var watch: RunLogWatch?
    /// A remote writer was told this socket watches (it must be told when it stops).
    var toldWriter = false
    /// The last frame this socket got: the host's retention may drop frames a slow socket has not read yet, and
    /// the watch then goes on from the oldest kept.
    private var delivered: UInt64

    init(runID: String, reader: RunLog, record: RunRecord?, session: AgentSession, after: UInt64) {
        self.runID = runID
        self.reader = reader
        self.record = record
        self.session = session
        self.delivered = after
    }

    /// Stops streaming here (the client resumed the run on another socket of this instance, or again here).
    func cancel() { self.watch?.cancel() }

    func runLog(entry seq: UInt64, bytes: UnsafeBufferPointer<UInt8>) {
        if seq != self.delivered + 1 {
            // Never silently: the client learns which frames it will not get, as a resume from there would.
            self.session?.deliverGap(runID: self.runID, after: self.delivered, firstSeq: seq)
        }
        self.delivered = seq
        self.session?.deliver(entry: bytes)
    }

    func runLogEnded(lastSeq: UInt64, status: String, cancelled: Bool) {
        self.session?.streamEnded(self)
        if let record = self.record {
            record.detach(self)
        } else if self.toldWriter, cancelled {
            try? self.reader.signal(text: RunSignal.notWatching.json)
        }
        self.reader.release()
    }
}
