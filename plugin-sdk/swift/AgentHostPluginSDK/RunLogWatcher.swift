import CAgentHostPlugin

/// Receives the events of one run log watch, on the watching connection's event loop, one at a time.
public protocol RunLogWatcher: AnyObject {
    /// One entry, in order. `bytes` is borrowed: valid during this call only.
    func runLog(entry seq: UInt64, bytes: UnsafeBufferPointer<UInt8>)
    /// The watch's last event, exactly once: the log ended and every entry was delivered (`status` is its end
    /// status), or the watch was cancelled (`cancelled`, `status` empty). `lastSeq`: the last entry delivered.
    func runLogEnded(lastSeq: UInt64, status: String, cancelled: Bool)
}

/// A watcher made of two closures.
public final class RunLogClosureWatcher: RunLogWatcher {
    let onEntry: (UInt64, UnsafeBufferPointer<UInt8>) -> Void
    let onEnd: (UInt64, String, Bool) -> Void

    public init(entry: @escaping (UInt64, UnsafeBufferPointer<UInt8>) -> Void,
                end: @escaping (_ lastSeq: UInt64, _ status: String, _ cancelled: Bool) -> Void)
    {
        self.onEntry = entry
        self.onEnd = end
    }

    public func runLog(entry seq: UInt64, bytes: UnsafeBufferPointer<UInt8>) { self.onEntry(seq, bytes) }
    public func runLogEnded(lastSeq: UInt64, status: String, cancelled: Bool) { self.onEnd(lastSeq, status, cancelled) }
}

/// A watcher travelling through the C ABI as the watch's `data`: retained by `RunLog.watch`, released by the
/// watch's one LOG_END (see `PluginEvents`).
final class WatchBox {
    let watcher: any RunLogWatcher
    init(_ watcher: any RunLogWatcher) { self.watcher = watcher }
}
