import Foundation

/// Several consecutive entries of one log in one blob: each entry is a 4-byte little-endian length and its bytes.
///
/// The store keeps one row per (log, write-behind batch) rather than one per entry: a streaming run appends many
/// small frames (tokens), and a row per frame pays a B-tree cell and its key for each, where a chunk pays them once
/// per batch. Measured with scripts/measure-runlog-layout.py (86-byte token frames, 50 per batch, WAL): 111 disk
/// bytes and 3.5 us of CPU per frame with a row per entry, 94 bytes and 1.2 us with chunks.
enum EntryChunk {
    static func encode(_ entries: ArraySlice<RunLogEntry>) -> Data {
        var data = Data(capacity: entries.reduce(0) { $0 + 4 + $1.bytes.count })
        for entry in entries {
            var length = UInt32(entry.bytes.count).littleEndian
            withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
            data.append(contentsOf: entry.bytes)
        }
        return data
    }

    /// Decodes the entries of a chunk starting at `firstSeq`, calling `body` with each until it returns false.
    static func decode(_ data: Data, firstSeq: UInt64, _ body: (RunLogEntry) -> Bool) {
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            var seq = firstSeq
            while offset + 4 <= raw.count {
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                offset += 4
                guard offset + length <= raw.count else { return }
                let entry = RunLogEntry(seq: seq, bytes: Array(raw[offset ..< offset + length]))
                offset += length
                seq += 1
                if !body(entry) { return }
            }
        }
    }
}
