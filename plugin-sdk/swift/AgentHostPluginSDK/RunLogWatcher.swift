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

/// What `RunLog.info()` reports.
public struct RunLogInfo: Sendable, Equatable {
    public var ended: Bool
    /// The oldest entry still kept (retention may have dropped older ones); `lastSeq + 1` when none is.
    public var firstSeq: UInt64
    /// The newest entry; 0 when the log is empty.
    public var lastSeq: UInt64
    public var createdUnixMilliseconds: Int64
    /// 0 while live.
    public var endedUnixMilliseconds: Int64
    /// "live", or the status the log was ended with.
    public var status: String

    public init(ended: Bool, firstSeq: UInt64, lastSeq: UInt64, createdUnixMilliseconds: Int64 = 0,
                endedUnixMilliseconds: Int64 = 0, status: String)
    {
        self.ended = ended
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.createdUnixMilliseconds = createdUnixMilliseconds
        self.endedUnixMilliseconds = endedUnixMilliseconds
        self.status = status
    }

    init(_ raw: agenthost_log_info_v1) {
        let status = withUnsafeBytes(of: raw.status) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        self.init(ended: raw.ended != 0, firstSeq: raw.first_seq, lastSeq: raw.last_seq,
                  createdUnixMilliseconds: raw.created_unix_ms, endedUnixMilliseconds: raw.ended_unix_ms,
                  status: status)
    }
}
