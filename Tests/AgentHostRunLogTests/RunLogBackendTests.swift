import AgentHostRunLog
import Foundation
import Testing

/// Both backends through the protocol: what the service relies on.
@Suite("Run log backends")
struct RunLogBackendTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, memory
        var testDescription: String { self.rawValue }
    }

    private static func make(_ kind: Kind, in directory: TemporaryDirectory) -> any RunLogBackend {
        switch kind {
        case .sqlite: return SQLiteRunLogBackend(path: directory.path + "/runlog.sqlite")
        case .memory: return MemoryRunLogBackend()
        }
    }

    private static func record(_ key: String, owner: RunLogOwner = Fixture.alice, route: String = "/r",
                               created: Int64 = 1000) -> RunLogRecord {
        RunLogRecord(route: route, key: Array(key.utf8), ownerIssuer: owner.issuer, ownerSubject: owner.subject,
                     secretHash: [], writer: "w1", createdMilliseconds: created)
    }

    private static func entries(_ seqs: ClosedRange<UInt64>) -> [RunLogEntry] {
        seqs.map { RunLogEntry(seq: $0, bytes: Array("entry \($0)".utf8)) }
    }

    @Test("create, find, and a taken key", arguments: Kind.allCases)
    func createAndFind(kind: Kind) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let backend = Self.make(kind, in: directory)
        let id = try backend.createLog(Self.record("run-1"))
        #expect(try backend.findLog(route: "/r", key: Array("run-1".utf8))?.id == id)
        #expect(try backend.findLog(route: "/other", key: Array("run-1".utf8)) == nil)
        #expect(throws: RunLogStoreError.exists) { try backend.createLog(Self.record("run-1")) }
        // The same key on another route is another log.
        #expect(try backend.createLog(Self.record("run-1", route: "/other")) != id)
        // So is the same key of another owner on the same route: a key is never taken by someone else.
        let bobs = try backend.createLog(Self.record("run-1", owner: Fixture.bob))
        #expect(bobs != id)
        #expect(try backend.findLog(route: "/r", key: Array("run-1".utf8), owner: Fixture.bob)?.id == bobs)
        #expect(try backend.findLog(route: "/r", key: Array("run-1".utf8))?.id == id)
    }

    @Test("batches of several logs, read back by seq range", arguments: Kind.allCases)
    func appendAndRead(kind: Kind) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let backend = Self.make(kind, in: directory)
        let a = try backend.createLog(Self.record("a"))
        let b = try backend.createLog(Self.record("b"))
        try backend.write([RunLogWrite(logID: a, entries: Self.entries(1 ... 3)),
                           RunLogWrite(logID: b, entries: Self.entries(1 ... 2))])
        try backend.write([RunLogWrite(logID: a, entries: Self.entries(4 ... 6), end: ("complete", 2000))])
        #expect(try backend.readEntries(logID: a, from: 1, limit: 100, maxBytes: 1 << 20) == Self.entries(1 ... 6))
        #expect(try backend.readEntries(logID: a, from: 3, limit: 2, maxBytes: 1 << 20) == Self.entries(3 ... 4))
        // maxBytes bounds the answer but always lets one entry through.
        #expect(try backend.readEntries(logID: a, from: 2, limit: 100, maxBytes: 1).count == 1)
        #expect(try backend.readEntries(logID: b, from: 1, limit: 100, maxBytes: 1 << 20) == Self.entries(1 ... 2))
        let ended = try #require(try backend.log(id: a))
        #expect(ended.status == "complete")
        #expect(ended.endedMilliseconds == 2000)
        #expect(ended.lastSeq == 6)
        #expect(try backend.log(id: b)?.isLive == true)
    }

    @Test("retention drops the oldest entries and moves first_seq", arguments: Kind.allCases)
    func dropBefore(kind: Kind) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let backend = Self.make(kind, in: directory)
        let a = try backend.createLog(Self.record("a"))
        try backend.write([RunLogWrite(logID: a, entries: Self.entries(1 ... 3))])
        try backend.write([RunLogWrite(logID: a, entries: Self.entries(4 ... 5))])
        try backend.write([RunLogWrite(logID: a, dropBefore: 4)])
        #expect(try backend.log(id: a)?.firstSeq == 4)
        #expect(try backend.readEntries(logID: a, from: 1, limit: 100, maxBytes: 1 << 20) == Self.entries(4 ... 5))
    }

    @Test("an owner's logs newest first, by route", arguments: Kind.allCases)
    func listing(kind: Kind) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let backend = Self.make(kind, in: directory)
        _ = try backend.createLog(Self.record("1"))
        _ = try backend.createLog(Self.record("2", route: "/s"))
        _ = try backend.createLog(Self.record("3"))
        _ = try backend.createLog(Self.record("4", owner: Fixture.bob))
        #expect(try backend.listLogs(issuer: Fixture.alice.issuer, subject: "alice", route: nil, limit: 10)
            .map { String(decoding: $0.key, as: UTF8.self) } == ["3", "2", "1"])
        #expect(try backend.listLogs(issuer: Fixture.alice.issuer, subject: "alice", route: "/r", limit: 1)
            .map { String(decoding: $0.key, as: UTF8.self) } == ["3"])
        #expect(try backend.newestLog(issuer: Fixture.alice.issuer, subject: "alice", key: Array("2".utf8))?.route == "/s")
        #expect(try backend.newestLog(issuer: Fixture.bob.issuer, subject: "bob", key: Array("2".utf8)) == nil)
        #expect(try backend.logs(createdAfter: 2, limit: 10).count == 2)
    }

    @Test("several logs created in one transaction: a taken key fails alone", arguments: Kind.allCases)
    func createSeveral(kind: Kind) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let backend = Self.make(kind, in: directory)
        let taken = try backend.createLog(Self.record("taken"))
        // "b" already ended, with its entries: inserted as it is.
        var ended = Self.record("b")
        ended.status = "complete"
        ended.endedMilliseconds = 2_000
        ended.lastSeq = 3
        ended.bytes = 21
        let results = try backend.createLogs([NewRunLog(record: Self.record("a")), NewRunLog(record: Self.record("taken")),
                                              NewRunLog(record: ended, entries: Self.entries(1 ... 3))])
        #expect(results.count == 3)
        let a = try #require(try? results[0].get())
        let b = try results[2].get()
        #expect(throws: RunLogStoreError.exists) { try results[1].get() }
        #expect(taken < a && a < b, "ids follow the order given")
        #expect(try backend.findLog(route: "/r", key: Array("b".utf8))?.id == b)
        #expect(try backend.log(id: b)?.status == "complete")
        #expect(try backend.readEntries(logID: b, from: 1, limit: 10, maxBytes: 1 << 20) == Self.entries(1 ... 3))
        #expect(try backend.readEntries(logID: a, from: 1, limit: 10, maxBytes: 1 << 20).isEmpty)
    }

    @Test("live logs by writer, signals, prune", arguments: Kind.allCases)
    func orphansSignalsPrune(kind: Kind) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let backend = Self.make(kind, in: directory)
        var other = Self.record("other")
        other.writer = "w2"
        let a = try backend.createLog(Self.record("a"))
        let b = try backend.createLog(other)
        #expect(try backend.liveLogs(writer: "w1", excluding: true).map(\.id) == [b])
        #expect(try backend.liveLogs(writer: "w1", excluding: false).map(\.id) == [a])

        try backend.addSignal(logID: a, data: Array("stop".utf8))
        try backend.addSignal(logID: b, data: Array("x".utf8))
        try backend.addSignal(logID: a, data: Array("input".utf8))
        #expect(try backend.takeSignals(logIDs: [a]).map(\.data) == [Array("stop".utf8), Array("input".utf8)])
        #expect(try backend.takeSignals(logIDs: [a]).isEmpty)

        let c = try backend.createLog(Self.record("c"))
        try backend.write([RunLogWrite(logID: a, end: ("complete", 10_000)), RunLogWrite(logID: b, end: ("error", 20_000)),
                           RunLogWrite(logID: c, end: ("complete", 30_000))])
        // Keep 2 ended logs: the oldest ended goes.
        #expect(try backend.prune(RunLogRetention(maxEndedLogs: 2, maxEndedAgeSeconds: 3600), nowMilliseconds: 40_000)
            .map(\.name.key) == [Array("a".utf8)])
        #expect(try backend.log(id: a) == nil)
        // Older than 15 s: b goes too.
        #expect(try backend.prune(RunLogRetention(maxEndedLogs: 10, maxEndedAgeSeconds: 15), nowMilliseconds: 40_000).count == 1)
        #expect(try backend.log(id: b) == nil)
        #expect(try backend.log(id: c) != nil)

        // The total: ended logs' bytes added up from the newest; the oldest beyond the total go, live ones stay.
        let d = try backend.createLog(Self.record("d"))
        let e = try backend.createLog(Self.record("e"))
        let live = try backend.createLog(Self.record("live"))
        let kilobyte = [RunLogEntry(seq: 1, bytes: Array(repeating: 7, count: 1024))]
        try backend.write([RunLogWrite(logID: d, entries: kilobyte, end: ("complete", 31_000)),
                           RunLogWrite(logID: e, entries: kilobyte, end: ("complete", 32_000)),
                           RunLogWrite(logID: live, entries: kilobyte)])
        #expect(try backend.prune(RunLogRetention(maxEndedLogs: 10, maxEndedAgeSeconds: 3600, maxTotalBytes: 1500),
                                  nowMilliseconds: 40_000).count == 2)
        #expect(try backend.log(id: e) != nil)
        #expect(try backend.log(id: d) == nil)
        #expect(try backend.log(id: c) == nil, "older than the first log past the total")
        #expect(try backend.log(id: live) != nil)
    }

    /// One identity ending runs fast must evict its own history, not everyone's (the attack found a global count
    /// let one client wipe every other identity's ended runs in seconds).
    @Test("retention per owner: one identity's runs evict its own oldest, not another's", arguments: Kind.allCases)
    func perOwnerRetention(kind: Kind) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let backend = Self.make(kind, in: directory)
        let kept = try backend.createLog(Self.record("alice-1"))
        try backend.write([RunLogWrite(logID: kept, end: ("complete", 1_000))])
        var flood: [Int64] = []
        for index in 0 ..< 6 {
            let id = try backend.createLog(Self.record("bob-\(index)", owner: Fixture.bob))
            try backend.write([RunLogWrite(logID: id, entries: [RunLogEntry(seq: 1, bytes: Array(repeating: 1, count: 100))],
                                           end: ("complete", 2_000 + Int64(index)))])
            flood.append(id)
        }
        let policy = RunLogRetention(maxEndedLogs: 100, maxEndedAgeSeconds: 3600, maxEndedLogsPerOwner: 4,
                                     maxEndedBytesPerOwner: 1 << 20)
        let pruned = try backend.prune(policy, nowMilliseconds: 10_000)
        #expect(Set(pruned.map { String(decoding: $0.name.key, as: UTF8.self) }) == ["bob-0", "bob-1"])
        #expect(Set(pruned.map(\.id)) == Set(flood.prefix(2)))
        #expect(pruned.allSatisfy { $0.name.owner == Fixture.bob && $0.name.route == "/r" })
        #expect(try backend.log(id: kept) != nil, "another identity's run stays")
        #expect(try flood.map { try backend.log(id: $0) != nil } == [false, false, true, true, true, true])
        // Bytes per owner: 250 bytes keep bob's two newest (100 each), alice's 0-byte run is untouched.
        let byBytes = try backend.prune(RunLogRetention(maxEndedLogs: 100, maxEndedAgeSeconds: 3600,
                                                        maxEndedLogsPerOwner: 100, maxEndedBytesPerOwner: 250),
                                        nowMilliseconds: 10_000)
        #expect(byBytes.count == 2)
        #expect(try flood.map { try backend.log(id: $0) != nil } == [false, false, false, false, true, true])
        #expect(try backend.log(id: kept) != nil)
    }

    @Test("the SQLite store outlives its process: a new backend on the file reads the same bytes")
    func reopen() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        let binary: [UInt8] = [0, 255, 1, 254, 10, 13]
        do {
            let backend = SQLiteRunLogBackend(path: path)
            let id = try backend.createLog(Self.record("a"))
            try backend.write([RunLogWrite(logID: id, entries: [RunLogEntry(seq: 1, bytes: binary),
                                                                RunLogEntry(seq: 2, bytes: [])])])
        }
        let again = SQLiteRunLogBackend(path: path)
        let log = try #require(try again.findLog(route: "/r", key: Array("a".utf8)))
        #expect(try again.readEntries(logID: log.id, from: 1, limit: 10, maxBytes: 1 << 20)
            == [RunLogEntry(seq: 1, bytes: binary), RunLogEntry(seq: 2, bytes: [])])
    }

    @Test("a full disk and a read-only store are told apart")
    func failures() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        let full = SQLiteRunLogBackend(path: path, maxPageCount: 20)
        let id = try full.createLog(Self.record("a"))
        let big = [RunLogEntry(seq: 1, bytes: incompressible(256 << 10))]
        #expect(throws: RunLogStoreError.self) { try full.write([RunLogWrite(logID: id, entries: big)]) }
        do {
            try full.write([RunLogWrite(logID: id, entries: big)])
        } catch let error as RunLogStoreError {
            #expect(error.kind == .full)
        }
        let readOnly = SQLiteRunLogBackend(path: path, readOnly: true)
        do {
            try readOnly.write([RunLogWrite(logID: id, entries: Self.entries(1 ... 1))])
            Issue.record("a read-only store accepted a write")
        } catch let error as RunLogStoreError {
            #expect(error.kind == .readOnly)
        }
        // Reading still works.
        #expect(try readOnly.log(id: id)?.lastSeq == 0)
    }
}
