import CAgentHostPlugin

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
