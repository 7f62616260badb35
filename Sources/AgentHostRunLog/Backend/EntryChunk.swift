import CLZ4
import Foundation

/// Several consecutive entries of one log in one blob: each entry is a 4-byte little-endian length and its bytes.
///
/// The store keeps one row per (log, write-behind batch) rather than one per entry: a streaming run appends many
/// small frames (tokens), and a row per frame pays a B-tree cell and its key for each, where a chunk pays them once
/// per batch. Measured with scripts/measure-runlog-layout.py (86-byte token frames, 50 per batch, WAL): 111 disk
/// bytes and 3.5 us of CPU per frame with a row per entry, 94 bytes and 1.2 us with chunks.
///
/// A chunk that LZ4 shrinks by an eighth or more is stored compressed: a 4-byte marker no entry length can be
/// (0xFFFFFFFF), the raw chunk's length (4 bytes, little-endian), then one LZ4 block. Agent frames are JSON that
/// repeats its keys and the run id in every frame: a native-agent run (23 frames, 10.9 KB) compresses to 2.5 KB in
/// about 5 us, and every byte not stored is a byte the write-behind thread does not copy into the WAL, checkpoint
/// into the database and free again on retention (the bulk of its cost per run). LZ4 rather than zlib (43 us for
/// the same run, 1.9 KB): the write-behind thread shares the host's cores with the event loops. Chunks stored
/// before compression existed start with an entry length, never the marker, and read as they always did.
enum EntryChunk {
    /// Marks a compressed chunk: as an entry length it would be 4 GiB, which no entry is.
    static let compressedMarker: UInt32 = 0xFFFF_FFFF
    /// Smaller chunks are stored as they are: a few frames gain little and a header costs 8 bytes.
    static let minimumToCompress = 256
    /// The largest entry a host accepts (`run_log.max_entry_bytes` is at most 64 MiB): with a chunk's entry count,
    /// it bounds the raw length a damaged header may announce.
    static let maxEntryBytes = 64 << 20

    static func encode(_ entries: ArraySlice<RunLogEntry>) -> Data {
        var raw = [UInt8]()
        raw.reserveCapacity(entries.reduce(0) { $0 + 4 + $1.bytes.count })
        for entry in entries {
            withUnsafeBytes(of: UInt32(entry.bytes.count).littleEndian) { raw.append(contentsOf: $0) }
            raw.append(contentsOf: entry.bytes)
        }
        return self.compressed(raw) ?? Data(raw)
    }

    /// The compressed form of a raw chunk, or nil when it is small, too big for one LZ4 block, or hardly shrinks.
    private static func compressed(_ raw: [UInt8]) -> Data? {
        guard raw.count >= self.minimumToCompress, raw.count <= Int(LZ4_MAX_INPUT_SIZE) else { return nil }
        let capacity = Int(LZ4_compressBound(Int32(raw.count)))
        var output = Data(count: 8 + capacity)
        let written = output.withUnsafeMutableBytes { (destination: UnsafeMutableRawBufferPointer) -> Int32 in
            destination.storeBytes(of: self.compressedMarker.littleEndian, toByteOffset: 0, as: UInt32.self)
            destination.storeBytes(of: UInt32(raw.count).littleEndian, toByteOffset: 4, as: UInt32.self)
            return raw.withUnsafeBytes { source in
                LZ4_compress_default(source.baseAddress!.assumingMemoryBound(to: CChar.self),
                                     destination.baseAddress!.advanced(by: 8).assumingMemoryBound(to: CChar.self),
                                     Int32(raw.count), Int32(capacity))
            }
        }
        guard written > 0, 8 + Int(written) <= raw.count - raw.count / 8 else { return nil }
        output.count = 8 + Int(written)
        return output
    }

    /// The raw length a compressed chunk's header announces, or nil for a raw chunk (`head`: its first 8 bytes).
    private static func compressedLength(head: UnsafeRawBufferPointer) -> Int? {
        guard head.count >= 8,
            UInt32(littleEndian: head.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == self.compressedMarker
        else { return nil }
        return Int(UInt32(littleEndian: head.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
    }

    /// The entry bytes a stored chunk holds (its frames without their length prefixes), from its first 8 bytes, its
    /// stored length and its number of entries: what retention subtracts from the log's byte count.
    static func entryBytes(head: Data, storedLength: Int, entries: Int) -> Int {
        let raw = head.withUnsafeBytes { self.compressedLength(head: $0) } ?? storedLength
        // Clamped: a damaged row's seqs must not make this trap.
        return raw - 4 * min(max(0, entries), raw / 4)
    }

    /// Decodes the entries of a chunk starting at `firstSeq`, calling `body` with each until it returns false. A
    /// chunk that does not decode (a compressed one that is corrupt, a length past the end) yields the entries before
    /// the damage, if any: a damaged file must not crash the host that reads it. `entries`, the chunk's entry count
    /// when known, bounds what a compressed chunk may announce (else only LZ4's own 255:1 bound does).
    static func decode(_ data: Data, firstSeq: UInt64, entries: Int? = nil, _ body: (RunLogEntry) -> Bool) {
        data.withUnsafeBytes { (stored: UnsafeRawBufferPointer) in
            guard let rawLength = self.compressedLength(head: stored) else {
                self.decodeRaw(stored, firstSeq: firstSeq, body)
                return
            }
            // LZ4 expands at most 255 to 1: a larger announced length is damage, not a reason to allocate it.
            let compressed = UnsafeRawBufferPointer(rebasing: stored[8...])
            let announced = entries.map { $0.multipliedReportingOverflow(by: 4 + self.maxEntryBytes) }
            guard !compressed.isEmpty, rawLength > 0, rawLength <= compressed.count * 255,
                rawLength <= Int(Int32.max), compressed.count <= Int(Int32.max),
                announced.map({ $0.overflow || rawLength <= $0.partialValue }) ?? true
            else { return }
            var raw = [UInt8](repeating: 0, count: rawLength)
            let decoded = raw.withUnsafeMutableBytes { destination in
                LZ4_decompress_safe(compressed.baseAddress?.assumingMemoryBound(to: CChar.self),
                                    destination.baseAddress?.assumingMemoryBound(to: CChar.self),
                                    Int32(compressed.count), Int32(rawLength))
            }
            guard decoded == rawLength else { return }
            raw.withUnsafeBytes { self.decodeRaw($0, firstSeq: firstSeq, body) }
        }
    }

    private static func decodeRaw(_ raw: UnsafeRawBufferPointer, firstSeq: UInt64, _ body: (RunLogEntry) -> Bool) {
        var offset = 0
        var seq = firstSeq
        while offset + 4 <= raw.count {
            let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            offset += 4
            guard length <= raw.count - offset else { return }
            let entry = RunLogEntry(seq: seq, bytes: Array(raw[offset ..< offset + length]))
            offset += length
            seq += 1
            if !body(entry) { return }
        }
    }
}
