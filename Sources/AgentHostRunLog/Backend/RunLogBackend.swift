/// The run log's storage seam: what `RunLogService` needs from a store.
///
/// Two implementations exist: `SQLiteRunLogBackend` (embedded, the default with a state dir) and
/// `MemoryRunLogBackend` (nothing persisted). A PostgreSQL backend (several hosts, LISTEN/NOTIFY) is meant to be a
/// third. Every method is synchronous and may block on I/O: the service calls them from its own write-behind thread
/// or from an `NIOThreadPool`, never from an event loop. Errors are `RunLogStoreError`.
public protocol RunLogBackend: Sendable {
    /// Whether other processes may write this store too (the workers of one server on one SQLite file): then a
    /// log this process has not heard of yet may exist there.
    var isShared: Bool { get }

    /// Inserts a new log. Throws `RunLogStoreError.exists` if (route, owner, secret hash, key) is taken. Returns the
    /// log's id.
    func createLog(_ log: RunLogRecord) throws -> Int64

    /// Inserts several new logs in one transaction, each as its record says (a run that already ended is inserted
    /// ended) with its first entries: each gets its id, or `RunLogStoreError.exists` (and nothing is written for
    /// it). Throws when the store fails (then none was inserted).
    func createLogs(_ logs: [NewRunLog]) throws -> [Result<Int64, RunLogStoreError>]

    /// Applies writes to several logs in one transaction: appended entries, ends, retention drops.
    func write(_ writes: [RunLogWrite]) throws

    /// The log named (route, owner, secret hash, key), if any: `secretHash` is empty for an identified owner.
    func findLog(route: String, issuer: String, subject: String, secretHash: [UInt8], key: [UInt8]) throws -> RunLogRecord?

    /// `findLog`, but it never opens (nor migrates) the store: it throws when the store is not open yet. For callers
    /// on an event loop.
    func findLogIfOpen(route: String, issuer: String, subject: String, secretHash: [UInt8], key: [UInt8]) throws
        -> RunLogRecord?

    /// The log with this id, if any.
    func log(id: Int64) throws -> RunLogRecord?

    /// The logs with these ids that exist, by id (the service follows other processes' live logs with one read).
    func logs(ids: [Int64]) throws -> [Int64: RunLogRecord]

    /// Entries of a log with `seq >= from`, in order, at most `limit` entries and about `maxBytes` bytes (at least one
    /// entry when one exists). Entries before the log's first_seq are never returned.
    func readEntries(logID: Int64, from: UInt64, limit: Int, maxBytes: Int) throws -> [RunLogEntry]

    /// The logs of one owner, newest first, optionally only those of a route.
    func listLogs(issuer: String, subject: String, route: String?, limit: Int) throws -> [RunLogRecord]

    /// The newest log of an owner with this key, on any route.
    func newestLog(issuer: String, subject: String, key: [UInt8]) throws -> RunLogRecord?

    /// Logs created after id `afterID`, in id order (for another process's host to learn of new logs).
    func logs(createdAfter afterID: Int64, limit: Int) throws -> [RunLogRecord]

    /// Live logs whose writer is `incarnation` (or, with `excluding`, whose writer is not it): the orphans a
    /// restart or a dead worker leaves behind.
    func liveLogs(writer incarnation: String, excluding: Bool) throws -> [RunLogRecord]

    /// Queues a signal for the writer of a log (a writer in another process reads it with `takeSignals`).
    func addSignal(logID: Int64, data: [UInt8]) throws

    /// Removes and returns queued signals of these logs, oldest first.
    func takeSignals(logIDs: [Int64]) throws -> [RunLogSignal]

    /// Applies the retention policy to ended logs; returns the logs it deleted (the service drops them from its
    /// index without reading the store again).
    func prune(_ policy: RunLogRetention, nowMilliseconds: Int64) throws -> [PrunedLog]

    /// The server stops: the last writes are in. A store may tidy up (SQLite: empty its WAL).
    func didStop()
}

extension RunLogBackend {
    public func didStop() {}
}

/// One log as stored.
public struct RunLogRecord: Sendable, Equatable {
    public var id: Int64
    public var route: String
    public var key: [UInt8]
    public var ownerIssuer: String
    public var ownerSubject: String
    /// SHA-256 of the anonymous owner's secret; empty for an identified owner.
    public var secretHash: [UInt8]
    /// The writer incarnation (server process) that created the log.
    public var writer: String
    /// "live" or the end status.
    public var status: String
    public var createdMilliseconds: Int64
    public var endedMilliseconds: Int64
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// Stored entry bytes (after retention).
    public var bytes: Int64

    public init(id: Int64 = 0, route: String, key: [UInt8], ownerIssuer: String, ownerSubject: String,
                secretHash: [UInt8], writer: String, status: String = RunLogRecord.live, createdMilliseconds: Int64,
                endedMilliseconds: Int64 = 0, firstSeq: UInt64 = 1, lastSeq: UInt64 = 0, bytes: Int64 = 0) {
        self.id = id
        self.route = route
        self.key = key
        self.ownerIssuer = ownerIssuer
        self.ownerSubject = ownerSubject
        self.secretHash = secretHash
        self.writer = writer
        self.status = status
        self.createdMilliseconds = createdMilliseconds
        self.endedMilliseconds = endedMilliseconds
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.bytes = bytes
    }

    public static let live = "live"
    public var isLive: Bool { self.status == Self.live }
}

/// One entry of a log.
public struct RunLogEntry: Sendable, Equatable {
    public var seq: UInt64
    public var bytes: [UInt8]

    public init(seq: UInt64, bytes: [UInt8]) {
        self.seq = seq
        self.bytes = bytes
    }
}

/// What one write-behind batch does to one log.
/// A log retention deleted.
public struct PrunedLog: Sendable, Equatable {
    public var id: Int64
    public var name: LogName

    public init(id: Int64, name: LogName) {
        self.id = id
        self.name = name
    }
}

/// A log to insert: its record (status, last seq and bytes as of now) and its entries so far (consecutive from 1).
public struct NewRunLog: Sendable {
    public var record: RunLogRecord
    public var entries: [RunLogEntry]

    public init(record: RunLogRecord, entries: [RunLogEntry] = []) {
        self.record = record
        self.entries = entries
    }
}

public struct RunLogWrite: Sendable, Equatable {
    public var logID: Int64
    /// New entries, consecutive seqs following what the store has (a gap is allowed after memory-pressure drops).
    public var entries: [RunLogEntry]
    /// Entries before this seq are dropped (retention); nil keeps them.
    public var dropBefore: UInt64?
    /// Ends the log.
    public var end: (status: String, milliseconds: Int64)?

    public init(logID: Int64, entries: [RunLogEntry] = [], dropBefore: UInt64? = nil,
                end: (status: String, milliseconds: Int64)? = nil) {
        self.logID = logID
        self.entries = entries
        self.dropBefore = dropBefore
        self.end = end
    }

    public static func == (a: RunLogWrite, b: RunLogWrite) -> Bool {
        a.logID == b.logID && a.entries == b.entries && a.dropBefore == b.dropBefore
            && a.end?.status == b.end?.status && a.end?.milliseconds == b.end?.milliseconds
    }
}

/// A signal queued for a writer in another process.
public struct RunLogSignal: Sendable, Equatable {
    public var logID: Int64
    public var data: [UInt8]

    public init(logID: Int64, data: [UInt8]) {
        self.logID = logID
        self.data = data
    }
}

/// Why the store failed.
public struct RunLogStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// (route, owner, key) is taken.
        case exists
        /// The disk is full (SQLITE_FULL).
        case full
        /// The store is read-only (SQLITE_READONLY, a read-only file system).
        case readOnly
        /// Another I/O or database error.
        case io
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static let exists = RunLogStoreError(.exists, "this owner has a log with this key on this route")

    public var description: String { self.message }
}
