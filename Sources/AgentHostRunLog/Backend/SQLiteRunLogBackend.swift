import CFileStatus
import Foundation
import GRDB
import Glibc
import Synchronization

/// The embedded store: one SQLite file in the state dir, in WAL mode, shared by the worker processes of one server.
///
/// The database is opened (and migrated) on first use and again after a failed open, so a state dir that cannot be
/// written at start does not stop the server: the service keeps live logs in memory and retries.
public final class SQLiteRunLogBackend: RunLogBackend {
    public let path: String
    private let busyTimeout: TimeInterval
    private let readOnly: Bool
    private let maxPageCount: Int?
    private let pool = Mutex<DatabasePool?>(nil)
    /// Whether sibling worker processes write the same file (see `RunLogBackend.isShared`).
    public let isShared: Bool
    /// Runs before every attempt to open the store; an error fails the open (the state dir's lock: see
    /// `StateDirectoryLockHolder`).
    private let beforeOpen: (@Sendable () throws -> Void)?

    /// - Parameters:
    ///   - path: the database file (created 0600, see `restrictPermissions`).
    ///   - busyTimeout: how long a writer waits for another process's transaction.
    ///   - readOnly: open without writing (tests of a store that refuses writes).
    ///   - maxPageCount: caps the database's pages (tests of a full disk: SQLITE_FULL).
    ///   - shared: other processes (the workers of one server) write the file too.
    ///   - beforeOpen: must succeed before the store is opened (taking the state dir's lock).
    public init(path: String, busyTimeout: TimeInterval = 5, readOnly: Bool = false, maxPageCount: Int? = nil,
                shared: Bool = false, beforeOpen: (@Sendable () throws -> Void)? = nil) {
        self.isShared = shared
        self.beforeOpen = beforeOpen
        self.path = path
        self.busyTimeout = busyTimeout
        self.readOnly = readOnly
        self.maxPageCount = maxPageCount
    }

    /// The page size of a store this host creates (see `database()`).
    static let pageSize = 16_384

    /// Opens and migrates the database now (the service calls this on start to report a bad state dir early).
    public func open() throws {
        _ = try self.database()
    }

    private func database() throws -> DatabasePool {
        try self.pool.withLock { pool in
            if let pool { return pool }
            do {
                try self.beforeOpen?()
            } catch {
                throw RunLogStoreError(.readOnly,
                                       "the run log store is not opened without the state dir's lock: \(error)")
            }
            var configuration = Configuration()
            configuration.busyMode = .timeout(self.busyTimeout)
            configuration.readonly = self.readOnly
            let maxPageCount = self.maxPageCount
            configuration.prepareDatabase { db in
                if let maxPageCount { try db.execute(sql: "PRAGMA max_page_count = \(maxPageCount)") }
                // NORMAL is durable across a process crash in WAL mode (only an OS crash may lose the last
                // transactions), and spares an fsync per write-behind batch.
                if !db.configuration.readonly { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
                // Debian builds SQLite with SECURE_DELETE on: every page retention frees is zeroed, written to the
                // WAL and checkpointed again, which doubled the bytes the host wrote per run (1.05 GB against
                // 0.53 GB in 10 s of native-agent runs). FAST still zeroes deleted cells inside b-tree pages, where
                // that costs no I/O; freed overflow pages keep their bytes until reused (retention frees as many
                // as new runs take at a steady state), in files only the server's user may read
                // (`restrictPermissions`).
                try db.execute(sql: "PRAGMA secure_delete = FAST")
                // 16 KiB pages for a new store (an existing one keeps its size: WAL mode fixes it). A native run's
                // LZ4 chunk is ~2.2-2.5 KB: a 4 KiB page held one (55% used, and every WAL frame and checkpoint
                // write is a whole page), a 16 KiB page holds six or seven. Measured in the host at 100 clients of
                // native-agent, the write-behind thread's CPU per run: 58-67 us against 66-77 us with 4 KiB pages,
                // three pairs.
                try db.execute(sql: "PRAGMA page_size = \(Self.pageSize)")
            }
            if !self.readOnly { self.restrictPermissions() }
            let opened = try self.mapErrors { try DatabasePool(path: self.path, configuration: configuration) }
            if !self.readOnly {
                try self.mapErrors { try RunLogSchema.migrator.migrate(opened) }
            }
            pool = opened
            return opened
        }
    }

    /// The store's files are the server's user's alone: retention leaves pruned runs' bytes in free pages
    /// (`secure_delete = FAST`), and a state dir that already existed keeps whatever mode it had. SQLite gives the
    /// -wal and -shm files the database file's mode when it creates them; ones left by an older host lose their group
    /// and other bits here (0644 becomes 0600; an owner's read-only 0444 stays read-only, 0400). Each file is changed
    /// through a descriptor (`fchmod`), only when it is a regular file of this user, and never through a symlink: a
    /// planted link must not make the server (often root) change or create a file elsewhere. (A symlinked
    /// database an operator made is SQLite's to open; its mode is the operator's.) Best effort: a file this user
    /// cannot change is SQLite's to refuse or use. A descriptor another user opened while the file was readable
    /// stays open: that is what the state dir's own mode is for.
    private func restrictPermissions() {
        Self.restrictToOwner(path: self.path, flags: O_RDONLY | O_CREAT)
        for suffix in ["-wal", "-shm"] { Self.restrictToOwner(path: self.path + suffix, flags: O_RDONLY) }
    }

    private static func restrictToOwner(path: String, flags: Int32) {
        let fd = Glibc.open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var status = agenthost_file_status()
        guard agenthost_fstatus(fd, &status) == 0, status.is_regular != 0, status.uid == geteuid(), status.mode & 0o077 != 0
        else { return }
        _ = fchmod(fd, mode_t(status.mode & 0o700))
    }

    /// A single server that stops moves the WAL into the database and empties it (TRUNCATE): the file alone then
    /// holds every run (a copy of runlog.sqlite taken after a stop is whole), and the WAL's ~16 MiB go back to the
    /// disk. Not for worker processes sharing the store: a TRUNCATE checkpoint waits for every other reader, and a
    /// draining worker must not. Best effort: a failure leaves the WAL, which SQLite applies on the next open.
    public func didStop() {
        guard !self.isShared, !self.readOnly, let pool = self.pool.withLock({ $0 }) else { return }
        _ = try? pool.writeWithoutTransaction { db in try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    private func writing<T>(_ body: (Database) throws -> T) throws -> T {
        let db = try self.database()
        return try self.mapErrors { try db.write(body) }
    }

    private func reading<T>(_ body: (Database) throws -> T) throws -> T {
        let db = try self.database()
        return try self.mapErrors { try db.read(body) }
    }

    // MARK: RunLogBackend

    public func createLog(_ log: RunLogRecord) throws -> Int64 {
        switch try self.createLogs([NewRunLog(record: log)])[0] {
        case .success(let id): return id
        case .failure(let error): throw error
        }
    }

    public func createLogs(_ logs: [NewRunLog]) throws -> [Result<Int64, RunLogStoreError>] {
        guard !logs.isEmpty else { return [] }
        return try self.writing { db in
            // Cached: the statement is parsed once per connection, not once per run. A taken name inserts nothing
            // (rather than failing: a failed step would make the cached statement's next reset throw).
            let insert = try db.cachedStatement(sql: """
                INSERT INTO logs (name_hash, route, key, owner_issuer, owner_subject, secret_hash, writer, status,
                                  created_ms, ended_ms, first_seq, last_seq, bytes)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (name_hash) DO NOTHING
                """)
            let insertChunk = try db.cachedStatement(
                sql: "INSERT INTO chunks (log_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)")
            return try logs.map { new in
                let log = new.record
                let secretHash = LogNameHash.secretHash(subject: log.ownerSubject, log.secretHash)
                let hash = LogNameHash.of(route: log.route, issuer: log.ownerIssuer, subject: log.ownerSubject,
                                          secretHash: secretHash, key: log.key)
                try insert.execute(arguments: [
                    hash, log.route, Data(log.key), log.ownerIssuer, log.ownerSubject, Data(secretHash), log.writer,
                    log.status, log.createdMilliseconds, log.endedMilliseconds, Int64(clamping: log.firstSeq),
                    Int64(clamping: log.lastSeq), log.bytes])
                guard db.changesCount > 0 else { return .failure(RunLogStoreError.exists) }
                let id = db.lastInsertedRowID
                if let first = new.entries.first, let last = new.entries.last {
                    try insertChunk.execute(arguments: [id, Int64(clamping: first.seq), Int64(clamping: last.seq),
                                                        EntryChunk.encode(new.entries[...])])
                }
                return .success(id)
            }
        }
    }

    public func write(_ writes: [RunLogWrite]) throws {
        guard !writes.isEmpty else { return }
        try self.writing { db in
            // The statements every cycle runs, parsed once per connection. A log that grew and ended in the same
            // cycle (most runs: they last less than one) takes one UPDATE for both; SET reads the row as it was.
            let insertChunk = try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO chunks (log_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)")
            let grow = try db.cachedStatement(sql: """
                UPDATE logs SET last_seq = MAX(last_seq, ?1), bytes = bytes + ?2,
                    status = CASE WHEN ?3 IS NOT NULL AND status = 'live' THEN ?3 ELSE status END,
                    ended_ms = CASE WHEN ?3 IS NOT NULL AND status = 'live' THEN ?4 ELSE ended_ms END
                WHERE id = ?5
                """)
            let end = try db.cachedStatement(
                sql: "UPDATE logs SET status = ?, ended_ms = ? WHERE id = ? AND status = 'live'")
            let dropSignals = try db.cachedStatement(sql: "DELETE FROM signals WHERE log_id = ?")
            for write in writes {
                if let first = write.entries.first, let last = write.entries.last {
                    let bytes = write.entries.reduce(0) { $0 + $1.bytes.count }
                    try insertChunk.execute(arguments: [write.logID, Int64(clamping: first.seq), Int64(clamping: last.seq),
                                                        EntryChunk.encode(write.entries[...])])
                    try grow.execute(arguments: [Int64(clamping: last.seq), bytes, write.end?.status, write.end?.milliseconds,
                                                 write.logID])
                } else if let ending = write.end {
                    try end.execute(arguments: [ending.status, ending.milliseconds, write.logID])
                }
                if let dropBefore = write.dropBefore {
                    // The entry bytes of the chunks that go: a compressed chunk's raw length is in its header. Read
                    // as optionals: a damaged row counts as nothing rather than trapping.
                    let dropped = try Row.fetchAll(db, sql: """
                        SELECT SUBSTR(data, 1, 8) AS head, LENGTH(data) AS length, first_seq, last_seq
                        FROM chunks WHERE log_id = ? AND last_seq < ?
                        """, arguments: [write.logID, Int64(clamping: dropBefore)]).reduce(0) { total, row in
                        let first = Self.value(row, "first_seq") ?? Int64(0), last = Self.value(row, "last_seq") ?? Int64(0)
                        let entries = last.subtractingReportingOverflow(first)
                        guard let head: Data = Self.value(row, "head"), let length: Int = Self.value(row, "length"),
                            !entries.overflow,
                            entries.partialValue >= 0, entries.partialValue < Int64(Int.max / 8)
                        else { return total }
                        return total + EntryChunk.entryBytes(head: head, storedLength: length,
                                                             entries: Int(entries.partialValue) + 1)
                    }
                    try db.execute(sql: "DELETE FROM chunks WHERE log_id = ? AND last_seq < ?",
                                   arguments: [write.logID, Int64(clamping: dropBefore)])
                    try db.execute(sql: """
                        UPDATE logs SET first_seq = MAX(first_seq, ?), bytes = MAX(0, bytes - ?) WHERE id = ?
                        """, arguments: [Int64(clamping: dropBefore), dropped, write.logID])
                }
                // Signals are queued in the store only for a writer in another process: alone on the store, there
                // are none to clean up.
                if write.end != nil && self.isShared {
                    try dropSignals.execute(arguments: [write.logID])
                }
            }
        }
    }

    /// A point lookup that never opens (nor migrates) the database: nil when it is not open yet.
    public func findLogIfOpen(route: String, issuer: String, subject: String, secretHash: [UInt8], key: [UInt8])
        throws -> RunLogRecord?
    {
        guard self.pool.withLock({ $0 != nil }) else { throw RunLogStoreError(.io, "the run log store is not open") }
        return try self.findLog(route: route, issuer: issuer, subject: subject, secretHash: secretHash, key: key)
    }

    public func findLog(route: String, issuer: String, subject: String, secretHash: [UInt8], key: [UInt8]) throws
        -> RunLogRecord?
    {
        let secretHash = LogNameHash.secretHash(subject: subject, secretHash)
        let hash = LogNameHash.of(route: route, issuer: issuer, subject: subject, secretHash: secretHash, key: key)
        return try self.reading { db in
            // Found by its name's hash, then every field compared: a colliding name is not this one.
            try Row.fetchOne(db, sql: """
                SELECT * FROM logs WHERE name_hash = ? AND route = ? AND owner_issuer = ? AND owner_subject = ?
                AND secret_hash = ? AND key = ?
                """, arguments: [hash, route, issuer, subject, Data(secretHash), Data(key)]).flatMap(Self.record)
        }
    }

    public func log(id: Int64) throws -> RunLogRecord? {
        try self.reading { db in
            try Row.fetchOne(db, sql: "SELECT * FROM logs WHERE id = ?", arguments: [id]).flatMap(Self.record)
        }
    }

    public func logs(ids: [Int64]) throws -> [Int64: RunLogRecord] {
        try self.reading { db in
            var records: [Int64: RunLogRecord] = [:]
            // In chunks: SQLite bounds the number of parameters of one statement.
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = Array(ids[start ..< min(ids.count, start + 500)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                for row in try Row.fetchAll(db, sql: "SELECT * FROM logs WHERE id IN (\(marks))",
                                            arguments: StatementArguments(chunk)) {
                    guard let record = Self.record(row) else { continue }
                    records[record.id] = record
                }
            }
            return records
        }
    }

    public func readEntries(logID: Int64, from: UInt64, limit: Int, maxBytes: Int) throws -> [RunLogEntry] {
        try self.reading { db in
            // A damaged row's first_seq may be negative (UInt64 would trap): nothing is read from such a log.
            guard let firstSeq = try Int64.fetchOne(db, sql: "SELECT first_seq FROM logs WHERE id = ?",
                                                    arguments: [logID]), firstSeq >= 0 else { return [] }
            let start = max(from, UInt64(firstSeq))
            var entries: [RunLogEntry] = []
            var bytes = 0
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT first_seq, last_seq, data FROM chunks WHERE log_id = ? AND last_seq >= ? ORDER BY first_seq
                """, arguments: [logID, Int64(start)])
            chunks: while let row = try cursor.next() {
                // A damaged row (negative seqs, no data) is skipped rather than trapping the reader.
                guard let chunkFirst: Int64 = Self.value(row, "first_seq"), let chunkLast: Int64 = Self.value(row, "last_seq"),
                    chunkFirst >= 1, chunkLast >= chunkFirst, let data: Data = Self.value(row, "data")
                else { continue }
                var full = false
                let count = chunkLast - chunkFirst < Int64(Int32.max) ? Int(chunkLast - chunkFirst) + 1 : nil
                EntryChunk.decode(data, firstSeq: UInt64(chunkFirst), entries: count) { entry in
                    guard entry.seq >= start else { return true }
                    if entries.count >= limit || (!entries.isEmpty && bytes + entry.bytes.count > maxBytes) {
                        full = true
                        return false
                    }
                    entries.append(entry)
                    bytes += entry.bytes.count
                    return true
                }
                if full { break chunks }
            }
            return entries
        }
    }

    public func listLogs(issuer: String, subject: String, route: String?, limit: Int) throws -> [RunLogRecord] {
        try self.reading { db in
            if let route {
                return try Row.fetchAll(db, sql: """
                    SELECT * FROM logs WHERE owner_issuer = ? AND owner_subject = ? AND route = ? ORDER BY id DESC LIMIT ?
                    """, arguments: [issuer, subject, route, limit]).compactMap(Self.record)
            }
            return try Row.fetchAll(db, sql: """
                SELECT * FROM logs WHERE owner_issuer = ? AND owner_subject = ? ORDER BY id DESC LIMIT ?
                """, arguments: [issuer, subject, limit]).compactMap(Self.record)
        }
    }

    public func newestLog(issuer: String, subject: String, key: [UInt8]) throws -> RunLogRecord? {
        try self.reading { db in
            try Row.fetchOne(db, sql: """
                SELECT * FROM logs WHERE owner_issuer = ? AND owner_subject = ? AND key = ? ORDER BY id DESC LIMIT 1
                """, arguments: [issuer, subject, Data(key)]).flatMap(Self.record)
        }
    }

    public func logs(createdAfter afterID: Int64, limit: Int) throws -> [RunLogRecord] {
        try self.reading { db in
            try Row.fetchAll(db, sql: "SELECT * FROM logs WHERE id > ? ORDER BY id LIMIT ?",
                             arguments: [afterID, limit]).compactMap(Self.record)
        }
    }

    public func liveLogs(writer incarnation: String, excluding: Bool) throws -> [RunLogRecord] {
        try self.reading { db in
            try Row.fetchAll(db, sql: "SELECT * FROM logs WHERE status = 'live' AND writer \(excluding ? "!=" : "=") ?",
                             arguments: [incarnation]).compactMap(Self.record)
        }
    }

    public func addSignal(logID: Int64, data: [UInt8]) throws {
        try self.writing { db in
            try db.execute(sql: "INSERT INTO signals (log_id, data) VALUES (?, ?)", arguments: [logID, Data(data)])
        }
    }

    public func takeSignals(logIDs: [Int64]) throws -> [RunLogSignal] {
        guard !logIDs.isEmpty else { return [] }
        // A cheap read first: the writer process polls this often, and most polls find nothing to take.
        let any = try self.reading { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM signals)") ?? false
        }
        guard any else { return [] }
        return try self.writing { db in
            // Signals nobody will take (their log ended, or is gone) go too: one left behind would make every
            // later poll of every process a write transaction.
            try db.execute(sql: "DELETE FROM signals WHERE log_id NOT IN (SELECT id FROM logs WHERE status = 'live')")
            let wanted = Set(logIDs)
            let rows = try Row.fetchAll(db, sql: "SELECT id, log_id, data FROM signals ORDER BY id")
            var taken: [RunLogSignal] = []
            for row in rows {
                guard let logID: Int64 = Self.value(row, "log_id"), wanted.contains(logID) else { continue }
                // A damaged signal (its data unreadable) is taken and dropped rather than trapped on.
                if let data: Data = Self.value(row, "data") { taken.append(RunLogSignal(logID: logID, data: Array(data))) }
                try db.execute(sql: "DELETE FROM signals WHERE id = ?", arguments: [row["id"] as DatabaseValue])
            }
            return taken
        }
    }

    public func prune(_ policy: RunLogRetention, nowMilliseconds: Int64) throws -> [PrunedLog] {
        try self.writing { db in
            // Each rule selects what it deletes, then deletes it by id, in order (a later rule counts what the
            // earlier ones kept). Not DELETE ... RETURNING: that needs SQLite 3.35, and the host links the system's
            // library (3.31 on Ubuntu 20.04, 3.34 on RHEL 9). "Ended" is status != 'live'.
            var pruned: [PrunedLog] = []
            func delete(_ select: String, _ arguments: StatementArguments) throws {
                let doomed = try Row.fetchAll(db, sql: """
                    SELECT id, route, owner_issuer, owner_subject, secret_hash, key FROM logs WHERE id IN (\(select))
                    """, arguments: arguments)
                let delete = try db.cachedStatement(sql: "DELETE FROM logs WHERE id = ?")
                // A damaged row goes too; only a readable name can be reported (to drop it from the index).
                for row in doomed { try delete.execute(arguments: [row["id"] as DatabaseValue]) }
                pruned += doomed.compactMap { row in
                    Self.value(row, "id").flatMap { id in Self.name(row).map { PrunedLog(id: id, name: $0) } }
                }
            }
            try delete("SELECT id FROM logs WHERE status != 'live' AND ended_ms < ?",
                       [nowMilliseconds - policy.maxEndedAgeSeconds * 1000])
            // Per owner first (count, then bytes from the newest), so one identity's runs cannot evict another's.
            try delete("""
                SELECT id FROM (
                    SELECT id,
                        ROW_NUMBER() OVER owner_newest AS n,
                        SUM(bytes) OVER owner_newest AS running
                    FROM logs WHERE status != 'live'
                    WINDOW owner_newest AS (PARTITION BY owner_issuer, owner_subject ORDER BY ended_ms DESC, id DESC))
                WHERE n > ? OR running > ?
                """, [policy.maxEndedLogsPerOwner, policy.maxEndedBytesPerOwner])
            try delete("SELECT id FROM logs WHERE status != 'live' ORDER BY ended_ms DESC, id DESC LIMIT -1 OFFSET ?",
                       [policy.maxEndedLogs])
            // The newest ended logs whose bytes, added up from the newest, stay within the total; the rest go.
            try delete("""
                SELECT id FROM (
                    SELECT id, SUM(bytes) OVER (ORDER BY ended_ms DESC, id DESC) AS running FROM logs
                    WHERE status != 'live')
                WHERE running > ?
                """, [policy.maxTotalBytes])
            return pruned
        }
    }

    // MARK: Helpers

    /// A stored log, or nil for a row a damaged file holds (a NULL, a value of the wrong type, a negative seq):
    /// every read skips such a row rather than trapping the host that reads it.
    private static func record(_ row: Row) -> RunLogRecord? {
        guard let id: Int64 = Self.value(row, "id"), let name = Self.name(row),
            let writer: String = Self.value(row, "writer"), let status: String = Self.value(row, "status"),
            let created: Int64 = Self.value(row, "created_ms"), let ended: Int64 = Self.value(row, "ended_ms"),
            let firstSeq: Int64 = Self.value(row, "first_seq"), let lastSeq: Int64 = Self.value(row, "last_seq"),
            let bytes: Int64 = Self.value(row, "bytes"), firstSeq >= 0, lastSeq >= 0
        else { return nil }
        return RunLogRecord(
            id: id, route: name.route, key: name.key, ownerIssuer: name.owner.issuer, ownerSubject: name.owner.subject,
            secretHash: name.secretHash, writer: writer, status: status, createdMilliseconds: created,
            endedMilliseconds: ended, firstSeq: UInt64(firstSeq), lastSeq: UInt64(lastSeq), bytes: bytes)
    }

    /// A column's value, nil when it is NULL or not of the type (GRDB's typed subscripts trap on both): for rows a
    /// damaged file may hold.
    private static func value<Value: DatabaseValueConvertible>(_ row: Row, _ column: String) -> Value? {
        Value.fromDatabaseValue(row[column] as DatabaseValue)
    }

    private static func name(_ row: Row) -> LogName? {
        guard let route: String = Self.value(row, "route"), let issuer: String = Self.value(row, "owner_issuer"),
            let subject: String = Self.value(row, "owner_subject"), let secretHash: Data = Self.value(row, "secret_hash"),
            let key: Data = Self.value(row, "key")
        else { return nil }
        return LogName(route: route, owner: RunLogOwner(issuer: issuer, subject: subject), secretHash: Array(secretHash),
                       key: Array(key))
    }

    /// SQLite's errors as the service tells them apart (full, read-only, other I/O), naming the file: SQLite's own
    /// messages ("unable to open database file", "database disk image is malformed") do not say which.
    private func mapErrors<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as RunLogStoreError {
            throw error
        } catch let error as DatabaseError {
            let store = "the run log store \(self.path)"
            switch error.resultCode {
            case .SQLITE_FULL: throw RunLogStoreError(.full, "\(store) is full: \(error.message ?? "\(error)")")
            case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
                throw RunLogStoreError(.readOnly, "\(store) cannot be written: \(error.message ?? "\(error)")")
            default: throw RunLogStoreError(.io, "\(store) failed: \(error)")
            }
        } catch {
            throw RunLogStoreError(.io, "the run log store \(self.path) failed: \(error)")
        }
    }
}
