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
    /// A remote writer was told this socket watches (it must be told when it stops, and its lease renewed
    /// meanwhile by `registry`'s sweep).
    var toldWriter = false
    /// What names this stream in its `watching` leases to a remote writer.
    let watcherID = ResumeToken.make()
    private let registry: RunRegistry
    /// The last frame this socket got: the host's retention may drop frames a slow socket has not read yet (the
    /// watch then goes on from the oldest kept), and a writer whose process died leaves a gap before the host's
    /// terminal entry (frames lost in the crash).
    private var delivered: UInt64

    init(runID: String, reader: RunLog, record: RunRecord?, session: AgentSession, registry: RunRegistry,
         after: UInt64)
    {
        self.runID = runID
        self.registry = registry
        self.reader = reader
        self.record = record
        self.session = session
        self.delivered = after
    }

    /// Tells the remote writer this stream watches (for its lease's length). False if the writer cannot be told
    /// (the run ended, or has no writer now). Safe from any thread: `reader` and `watcherID` never change.
    func renewLease() -> Bool {
        (try? self.reader.signal(text: RunSignal.watching(watcher: self.watcherID).json)) != nil
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
        // Ended with no status: the host's retention deleted the run while this socket followed it (every run the
        // SDK writes ends with one). Said, or the client would wait for a terminal frame that never comes.
        if !cancelled && status.isEmpty { self.session?.deliverGone(runID: self.runID) }
        if let record = self.record {
            record.detach(self)
        } else if self.toldWriter {
            // Before the release: the sweep must not renew through a released handle.
            self.registry.stopRenewing(self)
            if cancelled { try? self.reader.signal(text: RunSignal.notWatching(watcher: self.watcherID).json) }
        }
        self.reader.release()
    }
}
