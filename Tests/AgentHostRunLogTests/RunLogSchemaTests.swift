import Foundation
import GRDB
import Testing

@testable import AgentHostRunLog

/// What the SQLite layout promises beyond the backend protocol: names keyed by their hash (anonymous ones by their
/// secret's hash), ids never given out twice, chunks on their own B-tree pages and gone with their log.
@Suite("Run log schema")
final class RunLogSchemaTests {
    /// Each test's own store (Swift Testing makes a suite instance per test).
    private let directory = TemporaryDirectory()
    private var path: String { self.directory.path + "/runlog.sqlite" }

    deinit { self.directory.remove() }

    private static func record(_ key: String, issuer: String = "iss", subject: String = "alice",
                               secretHash: [UInt8] = []) -> RunLogRecord {
        RunLogRecord(route: "/r", key: Array(key.utf8), ownerIssuer: issuer, ownerSubject: subject,
                     secretHash: secretHash, writer: "w1", createdMilliseconds: 1)
    }

    @Test("names are found by their hash with every field compared; an identified name carries no secret")
    func namesByHash() throws {
        let backend = SQLiteRunLogBackend(path: self.path)
        let secret = [UInt8](repeating: 0xAB, count: 32)
        let anonymous = try backend.createLog(Self.record("run", issuer: "", subject: "", secretHash: secret))
        #expect(try backend.findLog(route: "/r", issuer: "", subject: "", secretHash: secret, key: Array("run".utf8))?.id
            == anonymous)
        #expect(try backend.findLog(route: "/r", issuer: "", subject: "", secretHash: [UInt8](repeating: 1, count: 32),
                                    key: Array("run".utf8)) == nil)
        // Another anonymous secret is another name: the same key is free for it.
        #expect(try backend.createLog(Self.record("run", issuer: "", subject: "", secretHash: [UInt8](repeating: 1, count: 32)))
            != anonymous)
        // A record of an identified owner that carries a secret hash names the same log as one without.
        let alices = try backend.createLog(Self.record("run", secretHash: secret))
        #expect(try backend.findLog(route: "/r", issuer: "iss", subject: "alice", secretHash: [], key: Array("run".utf8))?.id
            == alices)
        #expect(throws: RunLogStoreError.exists) { try backend.createLog(Self.record("run")) }
    }

    @Test("ids are never given out twice, even after retention deleted the newest log")
    func idsNeverReused() throws {
        let backend = SQLiteRunLogBackend(path: self.path)
        let first = try backend.createLog(Self.record("a"))
        try backend.write([RunLogWrite(logID: first, end: ("complete", 2))])
        var policy = RunLogRetention()
        policy.maxEndedAgeSeconds = 0
        #expect(try backend.prune(policy, nowMilliseconds: 10_000).map(\.id) == [first])
        #expect(try backend.createLog(Self.record("b")) > first)
    }

    @Test("a chunk of a dozen frames stays on its B-tree page, and goes with its log")
    func chunksOnTheirPages() throws {
        let path = self.path
        let backend = SQLiteRunLogBackend(path: path)
        // Bytes LZ4 cannot shrink: a chunk of ~8 KB, which a rowid table keeps whole on its 16 KiB page (a WITHOUT
        // ROWID table keeps ~4 KB of a row there and spills the rest to an overflow page of its own).
        let frames = (1 ... 12).map { RunLogEntry(seq: UInt64($0), bytes: incompressible(650)) }
        var ids: [Int64] = []
        for run in 0 ..< 100 {
            let id = try backend.createLog(Self.record("run-\(run)"))
            try backend.write([RunLogWrite(logID: id, entries: frames, end: ("complete", 2))])
            ids.append(id)
        }
        #expect(try backend.readEntries(logID: ids[0], from: 1, limit: 20, maxBytes: 1 << 20) == frames)
        let pages = { try DatabaseQueue(path: path).read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dbstat WHERE name = 'chunks'") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dbstat WHERE name = 'chunks' AND pagetype = 'overflow'") ?? 0)
        } }
        // 100 chunks of ~8 KB: two to a page, none spilling. With an overflow page per chunk it would be over 100.
        let (chunkPages, _, overflowPages) = try pages()
        #expect(overflowPages == 0)
        #expect(chunkPages < 60, "\(chunkPages) pages for 100 chunks")
        var policy = RunLogRetention()
        policy.maxEndedAgeSeconds = 0
        #expect(try backend.prune(policy, nowMilliseconds: 10_000).count == 100)
        #expect(try pages().1 == 0)
    }

    @Test("the store's files are the server's user's alone, also when an older host left them readable")
    func ownerOnlyFiles() throws {
        let mode = { (path: String) -> Int in Self.permissions(path) }
        // A store an older host left readable, still open in another process (so its -wal and -shm are not
        // empty: SQLite itself gives an empty one the database file's mode when it opens it).
        let older = try DatabaseQueue(path: self.path)
        try older.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE TABLE older (x); INSERT INTO older VALUES (1)")
        }
        for suffix in ["", "-wal", "-shm"] {
            #expect(chmod(self.path + suffix, 0o644) == 0, "runlog.sqlite\(suffix)")
            #expect(Self.size(self.path + suffix) > 0, "runlog.sqlite\(suffix)")
        }
        let backend = SQLiteRunLogBackend(path: self.path)
        let id = try backend.createLog(Self.record("run"))
        try backend.write([RunLogWrite(logID: id, entries: [RunLogEntry(seq: 1, bytes: Array("frame".utf8))])])
        withExtendedLifetime(backend) {
            for suffix in ["", "-wal", "-shm"] { #expect(mode(self.path + suffix) == 0o600, "runlog.sqlite\(suffix)") }
        }
        try older.close()
        let fresh = self.directory.path + "/fresh.sqlite"
        let freshBackend = SQLiteRunLogBackend(path: fresh)
        _ = try freshBackend.createLog(Self.record("run"))
        // While the store is open (its last connection closing removes the -wal and -shm files).
        withExtendedLifetime(freshBackend) {
            for suffix in ["", "-wal", "-shm"] { #expect(mode(fresh + suffix) == 0o600, "fresh.sqlite\(suffix)") }
        }
    }

    @Test("a store error names the file (SQLite's own message does not)")
    func errorsNameTheFile() throws {
        let path = self.directory.path + "/missing-dir/runlog.sqlite"
        do {
            try SQLiteRunLogBackend(path: path).open()
            Issue.record("a store below a missing directory opened")
        } catch let error as RunLogStoreError {
            #expect(error.kind == .readOnly)
            #expect(error.description.contains(path), "\(error)")
        }
    }

    @Test("making the store's files owner-only never follows a planted -wal or -shm symlink")
    func plantedLinksNotFollowed() throws {
        let target = self.directory.path + "/elsewhere"
        #expect(FileManager.default.createFile(atPath: target, contents: Data(count: 64),
                                               attributes: [.posixPermissions: 0o644]))
        for suffix in ["-wal", "-shm"] {
            try FileManager.default.createSymbolicLink(atPath: self.path + suffix, withDestinationPath: target)
        }
        // SQLite refuses a symlinked -shm (or uses it: its business); the target's mode must not change either way.
        _ = try? SQLiteRunLogBackend(path: self.path).open()
        // A database file that is a link: SQLite opens what it names, the host leaves its mode alone.
        let linkedTarget = self.directory.path + "/elsewhere.sqlite"
        #expect(FileManager.default.createFile(atPath: linkedTarget, contents: nil,
                                               attributes: [.posixPermissions: 0o644]))
        let linked = self.directory.path + "/linked.sqlite"
        try FileManager.default.createSymbolicLink(atPath: linked, withDestinationPath: linkedTarget)
        let linkedBackend = SQLiteRunLogBackend(path: linked)
        _ = try linkedBackend.createLog(Self.record("run"))
        for path in [target, linkedTarget] { #expect(Self.permissions(path) == 0o644, "\(path)") }
        withExtendedLifetime(linkedBackend) {}
    }

    // Through FileManager, not `stat`: with MemberImportVisibility the struct's fields belong to whichever Clang
    // module included <sys/stat.h> first, which a clean build may choose differently (see CFileStatus).
    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? -1
    }

    /// The file's permission bits (-1 if it cannot be read); a symlink's own, like lstat.
    static func permissions(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test("a new store gets 16 KiB pages; a store made with 4 KiB pages keeps them and is used as it is")
    func pageSize() throws {
        let backend = SQLiteRunLogBackend(path: self.path)
        _ = try backend.createLog(Self.record("new"))
        let pageSize = { (path: String) in try DatabaseQueue(path: path).read { try Int.fetchOne($0, sql: "PRAGMA page_size") } }
        #expect(try pageSize(self.path) == SQLiteRunLogBackend.pageSize)
        // A state dir from a host before the change: WAL mode fixes its page size, so the pragma must not fail it.
        let old = self.directory.path + "/old.sqlite"
        let queue = try DatabaseQueue(path: old)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA page_size = 4096")
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
        }
        try RunLogSchema.migrator.migrate(queue)
        try queue.close()
        let reopened = SQLiteRunLogBackend(path: old)
        let id = try reopened.createLog(Self.record("old"))
        try reopened.write([RunLogWrite(logID: id, entries: [RunLogEntry(seq: 1, bytes: Array("frame".utf8))])])
        #expect(try reopened.readEntries(logID: id, from: 1, limit: 10, maxBytes: 1 << 20).map(\.seq) == [1])
        #expect(try pageSize(old) == 4096)
    }

    @Test("retention frees a big run's overflow pages without writing them again (secure_delete FAST)")
    func retentionWritesNoFreedPages() throws {
        let path = self.path
        let backend = SQLiteRunLogBackend(path: path)
        // A long run's chunk: ~48 KB, two overflow pages past its B-tree cell (16 KiB pages: a native run's chunk,
        // ~2.5 KB after LZ4, fits in its cell). Random bytes: LZ4 would shrink repeated ones into the cell.
        var random = SystemRandomNumberGenerator()
        let frames = (1 ... 23).map { seq in
            RunLogEntry(seq: UInt64(seq), bytes: (0 ..< 2100).map { _ in UInt8.random(in: 0 ... 255, using: &random) })
        }
        for run in 0 ..< 40 {
            let id = try backend.createLog(Self.record("run-\(run)"))
            try backend.write([RunLogWrite(logID: id, entries: frames, end: ("complete", 2))])
        }
        let other = try DatabaseQueue(path: path)
        let overflowPages = try other.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dbstat WHERE name = 'chunks' AND pagetype = 'overflow'") ?? 0
        }
        #expect(overflowPages >= 80)
        // An empty WAL, so that the frames in it afterwards are the prune's.
        try other.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        var policy = RunLogRetention()
        policy.maxEndedAgeSeconds = 0
        #expect(try backend.prune(policy, nowMilliseconds: 10_000).count == 40)
        let walFrames = try other.writeWithoutTransaction { db in
            try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)").map { $0[1] as Int } ?? -1
        }
        // With SECURE_DELETE on (Debian's build default) every freed overflow page is zeroed into the WAL: 80 and
        // more frames. FAST writes the B-tree and freelist pages the deletes change (measured: 9).
        #expect(walFrames >= 0 && walFrames < overflowPages / 2, "\(walFrames) WAL frames for \(overflowPages) freed pages")
    }

    @Test("a store damaged behind the host's back is read without trapping: damaged rows are skipped")
    func damagedRowsAreSkipped() throws {
        let path = self.path
        let backend = SQLiteRunLogBackend(path: path)
        let frames = (1 ... 3).map { RunLogEntry(seq: UInt64($0), bytes: Array("frame \($0)".utf8)) }
        var ids: [Int64] = []
        for key in ["good", "negative seq", "text status", "bad chunk", "bad name"] {
            let id = try backend.createLog(Self.record(key))
            try backend.write([RunLogWrite(logID: id, entries: frames, end: ("complete", 2))])
            ids.append(id)
        }
        // What GRDB's typed reads trap on: a negative seq (UInt64), a value of another type, an unreadable chunk.
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE logs SET first_seq = -5 WHERE id = ?", arguments: [ids[1]])
            try db.execute(sql: "UPDATE logs SET status = X'00FF' WHERE id = ?", arguments: [ids[2]])
            try db.execute(sql: "UPDATE chunks SET first_seq = -1, data = 7 WHERE log_id = ?", arguments: [ids[3]])
            try db.execute(sql: "UPDATE logs SET key = 42 WHERE id = ?", arguments: [ids[4]])
        }
        #expect(try backend.log(id: ids[1]) == nil)
        #expect(try backend.log(id: ids[2]) == nil)
        #expect(try backend.log(id: ids[4]) == nil)
        #expect(try backend.listLogs(issuer: "iss", subject: "alice", route: nil, limit: 10).map(\.id).sorted()
            == [ids[0], ids[3]])
        #expect(try backend.logs(createdAfter: 0, limit: 10).map(\.id) == [ids[0], ids[3]])
        #expect(try backend.readEntries(logID: ids[1], from: 1, limit: 10, maxBytes: 1 << 20).isEmpty)
        #expect(try backend.readEntries(logID: ids[3], from: 1, limit: 10, maxBytes: 1 << 20).isEmpty)
        #expect(try backend.readEntries(logID: ids[0], from: 1, limit: 10, maxBytes: 1 << 20) == frames)
        // Retention still deletes every damaged ended row it selects; only readable names can be reported (to
        // drop them from the index): all but the one whose key is an integer.
        var policy = RunLogRetention()
        policy.maxEndedAgeSeconds = 0
        let pruned = try backend.prune(policy, nowMilliseconds: 10_000)
        #expect(Set(pruned.map(\.id)) == Set(ids.prefix(4)))
        #expect(try DatabaseQueue(path: path).read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM logs") } == 0)
    }
}
