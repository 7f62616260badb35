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
                    UNIQUE (route, key)
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
        return migrator
    }
}
