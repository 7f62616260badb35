import Foundation

/// Several consecutive entries of one log in one blob: each entry is a 4-byte little-endian length and its bytes.
///
/// The store keeps one row per (log, write-behind batch) rather than one per entry: a streaming run appends many
/// small frames (tokens), and a row per frame pays a B-tree cell, a rowid and an index entry for each (measured on
/// this machine: see the README's run log section), where a chunk pays them once per batch.
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
