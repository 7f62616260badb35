import Foundation
import GRDB
import Testing

@testable import AgentHostRunLog

/// A state dir outlives a binary: a store written by an older schema opens with its runs under the new one.
@Suite("Run log schema")
struct RunLogSchemaTests {
    static let secretHash = [UInt8](repeating: 0xAB, count: 32)
    static let secretHashHex = String(repeating: "AB", count: 32)

    /// A store at `path` as the first schema made it, with what `body` writes.
    static func writeFirstSchemaStore(at path: String, _ body: (Database) throws -> Void) throws {
        let old = try DatabasePool(path: path)
        try RunLogSchema.migrator.migrate(old, upTo: "v1: logs, chunks, signals")
        try old.write(body)
        try old.close()
    }

    @Test("a store of the first schema whose logs retention had all deleted gives out no id twice")
    func migratesAnEmptiedStore() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        try Self.writeFirstSchemaStore(at: path) { db in
            try db.execute(sql: """
                INSERT INTO logs (id, route, key, owner_issuer, owner_subject, secret_hash, writer, status,
                                  created_ms) VALUES (7, '/r', X'676F6E65', 'iss', 'alice', X'', 'w1', 'complete', 4)
                """)
            try db.execute(sql: "DELETE FROM logs")
        }
        let backend = SQLiteRunLogBackend(path: path)
        let id = try backend.createLog(RunLogRecord(route: "/r", key: Array("new".utf8), ownerIssuer: "iss",
                                                    ownerSubject: "alice", secretHash: [], writer: "w2",
                                                    createdMilliseconds: 5))
        #expect(id > 7)
    }

    @Test("a store of the first schema is migrated with its runs, entries and live state")
    func migratesTheFirstSchema() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        try Self.writeFirstSchemaStore(at: path) { db in
            try db.execute(sql: """
                INSERT INTO logs (route, key, owner_issuer, owner_subject, secret_hash, writer, status, created_ms,
                                  ended_ms, first_seq, last_seq, bytes)
                VALUES ('/r', X'72756E', 'iss', 'alice', X'', 'w1', 'complete', 1, 2, 1, 3, 21),
                       ('/r', X'6C697665', 'iss', 'alice', X'', 'w1', 'live', 3, 0, 1, 0, 0),
                       ('/r', X'616E6F6E', '', '', X'\(Self.secretHashHex)', 'w1', 'complete', 3, 4, 1, 0, 0)
                """)
            // A log retention deleted: its id is never given out again.
            try db.execute(sql: """
                INSERT INTO logs (id, route, key, owner_issuer, owner_subject, secret_hash, writer, status,
                                  created_ms) VALUES (10, '/r', X'676F6E65', 'iss', 'alice', X'', 'w1', 'complete', 4)
                """)
            try db.execute(sql: "DELETE FROM logs WHERE id = 10")
            try db.execute(sql: "INSERT INTO chunks (log_id, first_seq, last_seq, data) VALUES (1, 1, 2, ?), (1, 3, 3, ?)",
                           arguments: [EntryChunk.encode([RunLogEntry(seq: 1, bytes: Array("entry 1".utf8)),
                                                           RunLogEntry(seq: 2, bytes: Array("entry 2".utf8))][...]),
                                       EntryChunk.encode([RunLogEntry(seq: 3, bytes: Array("entry 3".utf8))][...])])
        }
        let backend = SQLiteRunLogBackend(path: path)
        let owner = RunLogOwner(issuer: "iss", subject: "alice")
        let run = try #require(try backend.findLog(route: "/r", key: Array("run".utf8), owner: owner))
        #expect(run.status == "complete")
        // An anonymous run is found with its secret's hash only.
        let anonymous = try backend.findLog(route: "/r", issuer: "", subject: "", secretHash: Self.secretHash,
                                            key: Array("anon".utf8))
        #expect(anonymous?.status == "complete")
        #expect(try backend.findLog(route: "/r", issuer: "", subject: "", secretHash: [UInt8](repeating: 1, count: 32),
                                    key: Array("anon".utf8)) == nil)
        #expect(try backend.readEntries(logID: run.id, from: 1, limit: 10, maxBytes: 1 << 20).map(\.seq) == [1, 2, 3])
        #expect(try backend.liveLogs(writer: "w1", excluding: false).map(\.key) == [Array("live".utf8)])
        // Chunks are rows of a rowid table now (a chunk over ~1 KB no longer takes an overflow page), and a log's
        // chunks still go with it.
        let schema = try DatabaseQueue(path: path).read { db in
            try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'chunks'")
        }
        #expect(schema?.contains("WITHOUT ROWID") == false)
        try backend.write([RunLogWrite(logID: run.id, entries: [RunLogEntry(seq: 4, bytes: Array("entry 4".utf8))])])
        #expect(try backend.readEntries(logID: run.id, from: 3, limit: 10, maxBytes: 1 << 20).map(\.seq) == [3, 4])
        // Names stay unique, and new logs get ids after every id the old schema gave out.
        let record = RunLogRecord(route: "/r", key: Array("run".utf8), ownerIssuer: "iss", ownerSubject: "alice",
                                  secretHash: [], writer: "w2", createdMilliseconds: 5)
        #expect(throws: RunLogStoreError.exists) { try backend.createLog(record) }
        var another = record
        another.key = Array("another".utf8)
        let anotherID = try backend.createLog(another)
        #expect(anotherID > 10)
        var policy = RunLogRetention()
        policy.maxEndedAgeSeconds = 0
        #expect(try backend.prune(policy, nowMilliseconds: 10_000).map(\.id).sorted()
            == [run.id, anonymous!.id].sorted())  // the new one is live
        let chunksLeft = try DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks") }
        #expect(chunksLeft == 0)
    }
}
