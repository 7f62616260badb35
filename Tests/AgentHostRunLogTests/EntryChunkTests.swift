import Foundation
import GRDB
import Testing

@testable import AgentHostRunLog

/// The stored form of a batch of entries: compressed with LZ4 when that pays, raw otherwise, and chunks written
/// before compression existed still read.
@Suite("Run log entry chunks")
struct EntryChunkTests {
    /// Frames shaped like an agent's: JSON repeating its keys and run id.
    private static func agentFrames(_ count: Int) -> [RunLogEntry] {
        (1 ... count).map { seq in
            RunLogEntry(seq: UInt64(seq), bytes: Array("""
                {"type":"message","data":{"source":"assistant","content":"token \(seq * 7919 % 1000)","type":"ModelClientStreamingChunkEvent"},"v":1,"run_id":"eff4c70b-0e78-45f6-b8f0-a02b732931d5","seq":\(seq)}
                """.utf8))
        }
    }

    private static func decoded(_ data: Data, firstSeq: UInt64 = 1) -> [RunLogEntry] {
        var entries: [RunLogEntry] = []
        EntryChunk.decode(data, firstSeq: firstSeq) { entries.append($0); return true }
        return entries
    }

    private static func prefix(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) }
    }

    @Test("agent frames are stored compressed, several times smaller, and read back whole")
    func compressesAgentFrames() {
        let frames = Self.agentFrames(23)
        let raw = frames.reduce(0) { $0 + 4 + $1.bytes.count }
        let stored = EntryChunk.encode(frames[...])
        #expect(Self.prefix(stored) == EntryChunk.compressedMarker)
        #expect(stored.count * 3 < raw, "\(stored.count) bytes stored for \(raw)")
        #expect(Self.decoded(stored) == frames)
        #expect(EntryChunk.entryBytes(head: stored.prefix(8), storedLength: stored.count, entries: frames.count)
            == raw - 4 * frames.count)
    }

    @Test("small or incompressible chunks are stored raw")
    func rawWhenItDoesNotPay() {
        let small = Self.agentFrames(1)
        let storedSmall = EntryChunk.encode(small[...])
        #expect(Self.prefix(storedSmall) == UInt32(small[0].bytes.count))
        #expect(Self.decoded(storedSmall) == small)
        var random = SystemRandomNumberGenerator()
        let noise = (1 ... 8).map { seq in
            RunLogEntry(seq: UInt64(seq), bytes: (0 ..< 500).map { _ in UInt8.random(in: 0 ... 255, using: &random) })
        }
        let storedNoise = EntryChunk.encode(noise[...])
        #expect(storedNoise.count == 8 * 504)
        #expect(Self.decoded(storedNoise, firstSeq: 1) == noise)
        #expect(EntryChunk.entryBytes(head: storedNoise.prefix(8), storedLength: storedNoise.count, entries: 8) == 8 * 500)
    }

    @Test("a chunk written before compression existed reads as it always did")
    func legacyRawChunk() {
        let frames = Self.agentFrames(40)
        var legacy = Data()
        for frame in frames {
            withUnsafeBytes(of: UInt32(frame.bytes.count).littleEndian) { legacy.append(contentsOf: $0) }
            legacy.append(contentsOf: frame.bytes)
        }
        #expect(Self.decoded(legacy, firstSeq: 1) == frames)
    }

    @Test("a damaged compressed chunk yields no entries, and no crash",
          arguments: ["payload", "length", "huge length", "length past its entries"])
    func damagedChunk(damage: String) {
        var stored = EntryChunk.encode(Self.agentFrames(23)[...])
        switch damage {
        case "payload":
            for index in stride(from: 12, to: stored.count, by: 3) { stored[index] ^= 0x5A }
        case "length":
            stored.replaceSubrange(4 ..< 8, with: withUnsafeBytes(of: UInt32(7).littleEndian) { Data($0) })
        case "huge length":
            stored.replaceSubrange(4 ..< 8, with: withUnsafeBytes(of: UInt32.max.littleEndian) { Data($0) })
        default:
            // Within LZ4's 255:1, past what one entry of at most 64 MiB can be: refused before allocating it.
            let announced = UInt32(min(stored.count - 8, 1 << 20) * 255)
            stored.replaceSubrange(4 ..< 8, with: withUnsafeBytes(of: announced.littleEndian) { Data($0) })
            var entries: [RunLogEntry] = []
            EntryChunk.decode(stored, firstSeq: 1, entries: 0) { entries.append($0); return true }
            #expect(entries.isEmpty)
            return
        }
        #expect(Self.decoded(stored).isEmpty)
    }

    @Test("byte counts of damaged rows are clamped, not trapped on")
    func entryBytesClamped() {
        #expect(EntryChunk.entryBytes(head: Data([1, 0, 0, 0]), storedLength: 100, entries: Int.max) == 0)
        #expect(EntryChunk.entryBytes(head: Data(), storedLength: 100, entries: -5) == 100)
    }

    @Test("byte retention of a log with compressed chunks subtracts the entry bytes, not the stored ones")
    func retentionCountsEntryBytes() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let backend = SQLiteRunLogBackend(path: directory.path + "/runlog.sqlite")
        let id = try backend.createLog(RunLogRecord(route: "/r", key: Array("k".utf8), ownerIssuer: "iss",
                                                    ownerSubject: "alice", secretHash: [], writer: "w1",
                                                    createdMilliseconds: 1))
        let frames = Self.agentFrames(40)
        try backend.write([RunLogWrite(logID: id, entries: Array(frames[0 ..< 20]))])
        try backend.write([RunLogWrite(logID: id, entries: Array(frames[20 ..< 40]))])
        let second = frames[20 ..< 40].reduce(0) { $0 + $1.bytes.count }
        try backend.write([RunLogWrite(logID: id, dropBefore: 21)])
        let record = try #require(try backend.log(id: id))
        #expect(record.firstSeq == 21)
        #expect(record.bytes == Int64(second))
        #expect(try backend.readEntries(logID: id, from: 1, limit: 100, maxBytes: 1 << 20) == Array(frames[20 ..< 40]))
    }
}
