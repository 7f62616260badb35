import GRDB

/// The SQLite schema, created and migrated by the host on start. Versioned: a new version is a new migration
/// appended here, never an edit of a released one (a state dir outlives a binary).
enum RunLogSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // (Named "v1 by name hash": a development store of the unreleased first layout fails to open, and says why,
        // rather than being used with columns it lacks.)
        // (The migration's comments are as released: its "~1 KB" for a WITHOUT ROWID table's row is at 4 KiB pages,
        // about 4 KB at the 16 KiB pages of a store made since; the reason for a rowid table stands for long runs.)
        migrator.registerMigration("v1 by name hash: logs, chunks, signals") { db in
            try db.execute(sql: """
                CREATE TABLE logs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    -- A key names a log within its route and owner (see LogName); the name is unique through an
                    -- 8-byte hash of it (see LogNameHash: an index over the fields was half the cost of a run).
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
                CREATE INDEX logs_by_owner ON logs (owner_issuer, owner_subject, id);
                -- Only live logs are looked up by writer (a restart's or a dead worker's orphans, signals), and most
                -- runs are inserted already ended: they get no entry here to insert and later delete.
                CREATE INDEX logs_live ON logs (writer) WHERE status = 'live';
                -- One row per (log, write-behind batch): see EntryChunk. A rowid table: a chunk of a dozen frames is
                -- over a kilobyte, and a WITHOUT ROWID table keeps at most ~1 KB of a row on its page, the rest on an
                -- overflow page of its own (three times the file; freed and zeroed again on retention).
                CREATE TABLE chunks (
                    log_id INTEGER NOT NULL REFERENCES logs(id) ON DELETE CASCADE,
                    first_seq INTEGER NOT NULL,
                    last_seq INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    UNIQUE (log_id, first_seq)
                );
                CREATE TABLE signals (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    log_id INTEGER NOT NULL REFERENCES logs(id) ON DELETE CASCADE,
                    data BLOB NOT NULL
                );
                CREATE INDEX signals_by_log ON signals (log_id, id);
                """)
        }
        return migrator
    }
}
