/// The operator's retention limits for run logs (config `run_log`).
public struct RunLogRetention: Sendable, Equatable {
    /// Entry bytes kept per log: past it the oldest entries go and first_seq moves.
    public var maxBytesPerLog: Int
    /// Ended logs kept in the store; the oldest ended ones beyond go.
    public var maxEndedLogs: Int
    /// Ended logs older than this (since they ended) go.
    public var maxEndedAgeSeconds: Int64
    /// Entry bytes all ended logs may hold together; the oldest ended ones beyond go. Without it, the count limit
    /// times the per-log limit is the only bound (10,000 x 16 MiB), and one busy client's runs could fill a disk
    /// (or, with no state dir, the memory) long before the count limit is reached.
    public var maxTotalBytes: Int
    /// Ended logs kept per owner (an identity; anonymous owners of one issuer share one quota, since anonymous
    /// identities cost nothing to make): beyond it that owner's oldest ended ones go. Without it one busy identity
    /// ends runs fast enough to evict every other identity's history within seconds.
    public var maxEndedLogsPerOwner: Int
    /// Entry bytes one owner's ended logs may hold together (same owners as `maxEndedLogsPerOwner`).
    public var maxEndedBytesPerOwner: Int

    /// The default total for a store in memory (no state dir): what the agent SDK's replay buffers were allowed
    /// before the run log held them.
    public static let memoryDefaultTotalBytes = 256 << 20
    /// The default per-owner bytes for a store in memory: an eighth of its total.
    public static let memoryDefaultBytesPerOwner = 32 << 20

    public init(maxBytesPerLog: Int = 16 << 20, maxEndedLogs: Int = 10_000, maxEndedAgeSeconds: Int64 = 7 * 86_400,
                maxTotalBytes: Int = 4 << 30, maxEndedLogsPerOwner: Int = 1000, maxEndedBytesPerOwner: Int = 512 << 20) {
        self.maxBytesPerLog = maxBytesPerLog
        self.maxEndedLogs = maxEndedLogs
        self.maxEndedAgeSeconds = maxEndedAgeSeconds
        self.maxTotalBytes = maxTotalBytes
        self.maxEndedLogsPerOwner = maxEndedLogsPerOwner
        self.maxEndedBytesPerOwner = maxEndedBytesPerOwner
    }
}
