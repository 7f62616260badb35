import Foundation
import GRDB

/// The SQLite schema, created and migrated by the host on start. Versioned: a new version is a new migration
/// appended here, never an edit of an old one (a state dir outlives a binary).
enum RunLogSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: logs, chunks, signals") { db in
            try db.execute(sql: """
                CREATE TABLE logs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    route TEXT NOT NULL,
                    key BLOB NOT NULL,
                    owner_issuer TEXT NOT NULL,
                    owner_subject TEXT NOT NULL,
                    secret_hash BLOB NOT NULL,
                    writer TEXT NOT NULL,
                    status TEXT NOT NULL,
                    created_ms INTEGER NOT NULL,
                    ended_ms INTEGER NOT NULL DEFAULT 0,
                    first_seq INTEGER NOT NULL DEFAULT 1,
                    last_seq INTEGER NOT NULL DEFAULT 0,
                    bytes INTEGER NOT NULL DEFAULT 0,
                    -- A key names a log within its route and owner (see LogName).
                    UNIQUE (route, owner_issuer, owner_subject, secret_hash, key)
                );
                CREATE INDEX logs_by_owner ON logs (owner_issuer, owner_subject, id);
                CREATE INDEX logs_live ON logs (status, writer);
                -- One row per (log, write-behind batch): see EntryChunk.
                CREATE TABLE chunks (
                    log_id INTEGER NOT NULL REFERENCES logs(id) ON DELETE CASCADE,
                    first_seq INTEGER NOT NULL,
                    last_seq INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (log_id, first_seq)
                ) WITHOUT ROWID;
                CREATE TABLE signals (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    log_id INTEGER NOT NULL REFERENCES logs(id) ON DELETE CASCADE,
                    data BLOB NOT NULL
                );
                CREATE INDEX signals_by_log ON signals (log_id, id);
                """)
        }
        migrator.registerMigration("v2: chunks in a rowid table, live logs indexed alone") { db in
            // A chunk of a dozen frames is over a kilobyte. In a WITHOUT ROWID table SQLite keeps at most ~1 KB of
            // a row on its B-tree page and the rest on an overflow page of its own: each chunk took a 4 KiB page
            // more (three times the file), and deleting it (retention) freed and zeroed that page (SQLite's
            // secure_delete, Debian's default). A rowid table keeps rows up to ~4 KB on the page. Measured with
            // `agenthost-agent-bench --run-log-store`: see the README.
            try db.execute(sql: """
                CREATE TABLE chunks_v2 (
                    log_id INTEGER NOT NULL REFERENCES logs(id) ON DELETE CASCADE,
                    first_seq INTEGER NOT NULL,
                    last_seq INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    UNIQUE (log_id, first_seq)
                );
                INSERT INTO chunks_v2 (log_id, first_seq, last_seq, data)
                    SELECT log_id, first_seq, last_seq, data FROM chunks ORDER BY log_id, first_seq;
                DROP TABLE chunks;
                ALTER TABLE chunks_v2 RENAME TO chunks;
                """)
            // A log's name is unique through an 8-byte hash of it (see LogNameHash), not an index over its fields;
            // SQLite cannot drop a constraint, so the table is made again. Only live logs are ever looked up by
            // writer (a restart's or a dead worker's orphans, signals), and most runs are inserted already ended: a
            // partial index spares them an entry to insert and to delete.
            let sequence = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'logs'") ?? 0
            try db.execute(sql: """
                CREATE TABLE logs_v2 (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name_hash INTEGER NOT NULL UNIQUE,
                    route TEXT NOT NULL,
                    key BLOB NOT NULL,
                    owner_issuer TEXT NOT NULL,
                    owner_subject TEXT NOT NULL,
                    secret_hash BLOB NOT NULL,
                    writer TEXT NOT NULL,
                    status TEXT NOT NULL,
                    created_ms INTEGER NOT NULL,
                    ended_ms INTEGER NOT NULL DEFAULT 0,
                    first_seq INTEGER NOT NULL DEFAULT 1,
                    last_seq INTEGER NOT NULL DEFAULT 0,
                    bytes INTEGER NOT NULL DEFAULT 0
                );
                """)
            let copy = try db.makeStatement(sql: """
                INSERT INTO logs_v2 (id, name_hash, route, key, owner_issuer, owner_subject, secret_hash, writer, status,
                                     created_ms, ended_ms, first_seq, last_seq, bytes)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM logs ORDER BY id")
            while let row = try rows.next() {
                let route: String = row["route"]
                let issuer: String = row["owner_issuer"]
                let subject: String = row["owner_subject"]
                let secretHash = LogNameHash.secretHash(subject: subject, Array(row["secret_hash"] as Data))
                let key: Data = row["key"]
                let hash = LogNameHash.of(route: route, issuer: issuer, subject: subject, secretHash: secretHash,
                                          key: Array(key))
                try copy.execute(arguments: [
                    row["id"] as Int64, hash, route, key, issuer, subject, Data(secretHash), row["writer"] as String,
                    row["status"] as String, row["created_ms"] as Int64, row["ended_ms"] as Int64,
                    row["first_seq"] as Int64, row["last_seq"] as Int64, row["bytes"] as Int64])
            }
            try db.execute(sql: """
                DROP TABLE logs;
                ALTER TABLE logs_v2 RENAME TO logs;
                CREATE INDEX logs_by_owner ON logs (owner_issuer, owner_subject, id);
                CREATE INDEX logs_live ON logs (writer) WHERE status = 'live';
                """)
            // Ids are never used again (the index follows new logs by id): the sequence goes on from where it was,
            // also when retention had emptied the table (then nothing copied made a row for it).
            try db.execute(sql: """
                DELETE FROM sqlite_sequence WHERE name = 'logs';
                INSERT INTO sqlite_sequence (name, seq) VALUES ('logs', MAX(?, (SELECT IFNULL(MAX(id), 0) FROM logs)));
                """, arguments: [sequence])
        }
        return migrator
    }
}
