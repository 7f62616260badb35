/// The operator's retention limits for run logs (config `run_log`).
public struct RunLogRetention: Sendable, Equatable {
    /// Entry bytes kept per log: past it the oldest entries go and first_seq moves.
    public var maxBytesPerLog: Int
    /// Ended logs kept in the store; the oldest ended ones beyond go.
    public var maxEndedLogs: Int
    /// Ended logs older than this (since they ended) go.
    public var maxEndedAgeSeconds: Int64

    public init(maxBytesPerLog: Int = 16 << 20, maxEndedLogs: Int = 10_000, maxEndedAgeSeconds: Int64 = 7 * 86_400) {
        self.maxBytesPerLog = maxBytesPerLog
        self.maxEndedLogs = maxEndedLogs
        self.maxEndedAgeSeconds = maxEndedAgeSeconds
    }
}
