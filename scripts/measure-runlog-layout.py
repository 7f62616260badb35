#!/usr/bin/env python3
# Measures the run log store's candidate layouts with the same SQLite settings the host uses (WAL,
# synchronous=NORMAL): one row per entry vs one row per (log, write-behind batch), the batch's row in a WITHOUT ROWID
# table (the first layout tried: a row over ~1 KB spills to an overflow page) or in a rowid table (the landed one).
# Chunks are stored raw here (the host compresses them with LZ4: see EntryChunk). Prints disk bytes and CPU per frame.
# Usage: python3 scripts/measure-runlog-layout.py   (see README, "Run logs")
import sqlite3, os, time, struct
N=200_000; BATCH=50; payload=b'{"type":"token","data":{"content":"hello "},"seq":123,"ts":"2026-12-01T04:00:00.000Z"}'
def run(layout):
    path=f'/tmp/measure-{layout}.sqlite'
    for suffix in ('','-wal','-shm'):
        try: os.remove(path+suffix)
        except FileNotFoundError: pass
    db=sqlite3.connect(path, isolation_level=None)
    db.execute('PRAGMA journal_mode=WAL'); db.execute('PRAGMA synchronous=NORMAL')
    if layout=='entry':
        db.execute('CREATE TABLE entries (log_id INTEGER, seq INTEGER, data BLOB, PRIMARY KEY(log_id, seq)) WITHOUT ROWID')
    elif layout=='chunk':
        db.execute('CREATE TABLE chunks (log_id INTEGER, first_seq INTEGER, last_seq INTEGER, data BLOB, PRIMARY KEY(log_id, first_seq)) WITHOUT ROWID')
    else:
        db.execute('CREATE TABLE chunks (log_id INTEGER, first_seq INTEGER, last_seq INTEGER, data BLOB, UNIQUE(log_id, first_seq))')
    start=time.process_time()
    seq=1
    for b in range(N//BATCH):
        db.execute('BEGIN')
        if layout=='entry':
            db.executemany('INSERT INTO entries VALUES (1, ?, ?)', [(seq+i, payload) for i in range(BATCH)])
        else:
            blob=b''.join(struct.pack('<I',len(payload))+payload for _ in range(BATCH))
            db.execute('INSERT INTO chunks VALUES (1, ?, ?, ?)', (seq, seq+BATCH-1, blob))
        db.execute('COMMIT')
        seq+=BATCH
    cpu=time.process_time()-start
    db.execute('PRAGMA wal_checkpoint(TRUNCATE)'); db.close()
    size=os.path.getsize(path)
    print(f'{layout}: {size/N:.1f} bytes/frame on disk (payload {len(payload)}), {cpu/N*1e6:.2f} us CPU/frame')
run('entry'); run('chunk'); run('chunk-rowid')
