import NIOCore

/// How the run log service behaves: retention, limits, and its timing.
public struct RunLogConfiguration: Sendable, Equatable {
    public var retention: RunLogRetention
    /// Largest entry log_append accepts.
    public var maxEntryBytes: Int
    /// Entry bytes not yet written to the store that all live logs may hold; past it the oldest unpersisted
    /// entries of the biggest logs are dropped (the store is failing).
    public var maxUnpersistedBytes: Int
    /// Already stored entries a live log keeps in memory for watchers that are a little behind.
    public var tailBytesPerLog: Int
    /// What all logs' stored tails may hold together: with many live logs each keeps its share, at most
    /// `tailBytesPerLog` (10,000 live runs at 256 KiB each would be 2.5 GiB). Watchers further behind read the store.
    public var tailBytesTotal: Int
    /// How often the write-behind thread writes a batch: how much of a run a crash of the host may lose, and how soon
    /// a sibling worker sees a new run. 50 ms by default: each batch's commit rewrites the pages its runs share
    /// (index pages, the tables' last leaves, the freelist), and measured in the host at ~1,300 native runs/s, 60 ms
    /// batches cost the write-behind thread 18% less CPU than 20 ms ones (133-139 against 160-170 ticks in 10 s).
    public var flushInterval: TimeAmount
    /// How often the write-behind thread looks for work while this process writes no log (new logs of other
    /// processes, retention).
    public var idleInterval: TimeAmount
    /// How often logs written by another process (and signals for ours) are read from the store.
    public var pollInterval: TimeAmount
    /// How often retention runs over ended logs.
    public var pruneInterval: TimeAmount
    /// This server process's writer incarnation: a new one per start.
    public var incarnation: String
    /// On start, end every live log another incarnation left (a restart). False in a worker whose supervisor
    /// does it (the supervisor holds the state dir's lock).
    public var endOrphansAtStart: Bool

    public static let maxKeyBytes = 128
    /// How far past the last stored entry the host numbers the terminal entry of a log whose writer process died
    /// (see `RunLogService.endOrphans`): more entries than a writer appends between two write-behind batches.
    public static let orphanSeqGap: UInt64 = 1 << 20
    public static let minSecretBytes = 16
    public static let maxSecretBytes = 256
    public static let maxSignalBytes = 64 * 1024
    public static let maxStatusBytes = 31

    public init(retention: RunLogRetention = RunLogRetention(), maxEntryBytes: Int = 1 << 20,
                maxUnpersistedBytes: Int = 256 << 20, tailBytesPerLog: Int = 256 << 10, tailBytesTotal: Int = 64 << 20,
                flushInterval: TimeAmount = .milliseconds(50), idleInterval: TimeAmount = .milliseconds(100),
                pollInterval: TimeAmount = .milliseconds(25),
                pruneInterval: TimeAmount = .seconds(60), incarnation: String = RunLogConfiguration.newIncarnation(),
                endOrphansAtStart: Bool = true) {
        self.retention = retention
        self.maxEntryBytes = maxEntryBytes
        self.maxUnpersistedBytes = maxUnpersistedBytes
        self.tailBytesPerLog = tailBytesPerLog
        self.tailBytesTotal = tailBytesTotal
        self.flushInterval = flushInterval
        self.idleInterval = idleInterval
        self.pollInterval = pollInterval
        self.pruneInterval = pruneInterval
        self.incarnation = incarnation
        self.endOrphansAtStart = endOrphansAtStart
    }

    /// A random incarnation id (128 bits, hex).
    public static func newIncarnation() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0 ..< 2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}
