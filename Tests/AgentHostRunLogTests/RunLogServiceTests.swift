import AgentHostCore
import AgentHostRunLog
import Foundation
import GRDB
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The service without a server: watches, ownership, signals, retention, store failures, restart recovery.
@Suite("Run log service")
struct RunLogServiceTests {
    private func start(_ backend: any RunLogBackend = MemoryRunLogBackend(),
                       configuration: RunLogConfiguration = Fixture.fastConfiguration(),
                       clock: TestClock = TestClock()) async -> RunLogService {
        let service = RunLogService(backend: backend, configuration: configuration, clock: clock,
                                    logger: Fixture.logger)
        await service.start()
        return service
    }

    private func target(_ handle: UInt64 = 1) -> RecordingTarget {
        RecordingTarget(handle: handle, eventLoop: Fixture.group.next())
    }

    @Test("a watch gets every entry once, in order, across the stored/live boundary, then one LOG_END")
    func watchAcrossBoundary() async throws {
        var configuration = Fixture.fastConfiguration()
        configuration.tailBytesPerLog = 64  // stored entries leave memory at once: early ones come from the store
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let service = await self.start(SQLiteRunLogBackend(path: directory.path + "/runlog.sqlite"),
                                       configuration: configuration)
        let log = try service.create("run").get()
        for i in 1 ... 200 { service.append(log, "{\"i\":\(i)}") }
        await service.flush()
        let target = self.target()
        let watchID = try service.watch(instance: 1, handle: log, target: target, afterSeq: 0, context: 42).get()
        for i in 201 ... 400 { service.append(log, "{\"i\":\(i)}") }
        #expect(service.end(handle: log, status: "complete") == nil)
        await target.waitForEnd()
        #expect(target.entries.map(\.seq) == Array(1 ... 400))
        #expect(target.entries.map(\.text) == (1 ... 400).map { "{\"i\":\($0)}" })
        #expect(target.entries.allSatisfy { $0.id == watchID && $0.context == 42 })
        let end = try #require(target.end)
        #expect(end.text == "complete")
        #expect(end.seq == 400)
        #expect(!end.cancelled)
        #expect(target.events.count == 401)
        await service.shutdown()
    }

    @Test("stored tails share a total: many live logs keep less each, and a watch still gets every entry")
    func tailsShareATotal() async throws {
        var configuration = Fixture.fastConfiguration()
        configuration.tailBytesPerLog = 1 << 20
        configuration.tailBytesTotal = 8 << 10  // 8 live logs: 1 KiB of stored tail each
        let service = await self.start(configuration: configuration)
        let entry = String(repeating: "x", count: 100)
        let logs = try (0 ..< 8).map { try service.create("run-\($0)").get() }
        for log in logs {
            for _ in 0 ..< 50 { service.append(log, entry) }
        }
        await service.flush()
        #expect(service.tailBytesInMemory <= 8 << 10)
        let target = self.target()
        _ = try service.watch(instance: 1, handle: logs[0], target: target, afterSeq: 0, context: 0).get()
        _ = service.end(handle: logs[0], status: "complete")
        await target.waitForEnd()
        #expect(target.entries.map(\.seq) == Array(1 ... 50))
        await service.shutdown()
    }

    @Test("a watch after a seq starts after it; appends never wait for the store")
    func watchAfterSeq() async throws {
        let backend = MemoryRunLogBackend()
        backend.failure.withLock { $0 = RunLogStoreError(.io, "down") }
        let service = await self.start(backend)
        let log = try service.create("run").get()
        for i in 1 ... 10 { #expect(try service.append(log, "\(i)").get() == UInt64(i)) }
        let target = self.target()
        _ = try service.watch(instance: 1, handle: log, target: target, afterSeq: 7, context: 0).get()
        _ = service.end(handle: log, status: "cancelled")
        await target.waitForEnd()
        #expect(target.entries.map(\.text) == ["8", "9", "10"])
        #expect(target.end?.text == "cancelled")
        #expect(service.append(log, "late") == .failure(.closed))
        #expect(service.end(handle: log, status: "x") == .closed)
        await service.shutdown()
    }

    @Test("delivery stops at high water and goes on when writable")
    func pacing() async throws {
        let service = await self.start()
        let log = try service.create("run").get()
        for i in 1 ... 50 { service.append(log, "\(i)") }
        _ = service.end(handle: log, status: "complete")
        let target = self.target()
        target.block(after: 10)
        _ = try service.watch(instance: 1, handle: log, target: target, afterSeq: 0, context: 0).get()
        try await Self.eventually { target.isWaitingForWritable }
        #expect(target.entries.count == 10)
        target.unblock()
        await target.waitForEnd()
        #expect(target.entries.map(\.seq) == Array(1 ... 50))
        await service.shutdown()
    }

    @Test("a watch reads nothing from the store for a connection above high water, and reads in small batches")
    func storeReadsWaitForTheConnection() async throws {
        let counting = CountingBackend(MemoryRunLogBackend())
        let service = await self.start(counting)
        let writer = try service.create("run").get()
        let entry = String(repeating: "x", count: 32 << 10)
        for _ in 1 ... 20 { service.append(writer, entry) }
        _ = service.end(handle: writer, status: "complete")
        _ = service.release(handle: writer)
        await service.flush()
        await service.flush()
        #expect(service.logsInMemory == 0, "the run is read back from the store")
        let reader = try service.open("run").get()
        let target = self.target()
        target.block(after: 0)
        _ = try service.watch(instance: 1, handle: reader, target: target, afterSeq: 0, context: 0).get()
        try await Self.eventually { target.isWaitingForWritable }
        // A client resuming many runs and reading nothing held a batch of every one in memory.
        #expect(counting.entryReads == 0)
        target.unblock()
        await target.waitForEnd()
        #expect(target.entries.map(\.seq) == Array(1 ... 20))
        #expect(counting.entryReads >= 5, "640 KiB in batches of 128 KiB")
        await service.shutdown()
    }

    @Test("unwatch and release cancel a watch with one LOG_END")
    func cancelling() async throws {
        let service = await self.start()
        let log = try service.create("run").get()
        service.append(log, "a")
        let reader = try service.open("run").get()
        let first = self.target(5)
        let id = try service.watch(instance: 1, handle: reader, target: first, afterSeq: 0, context: 0).get()
        #expect(service.unwatch(connection: 6, watchID: id) == .closed)  // another connection's watch
        #expect(service.unwatch(connection: 5, watchID: id) == nil)
        await first.waitForEnd()
        #expect(first.end?.cancelled == true)
        #expect(first.end?.text == "")
        #expect(service.unwatch(connection: 5, watchID: id) == .closed)

        let second = self.target(5)
        _ = try service.watch(instance: 1, handle: reader, target: second, afterSeq: 0, context: 0).get()
        #expect(service.release(handle: reader) == nil)
        await second.waitForEnd()
        #expect(second.end?.cancelled == true)
        #expect(second.events.filter { $0.kind == .logEnd }.count == 1)
        #expect(service.release(handle: reader) == .badArgument)

        let third = self.target(9)
        _ = try service.watch(instance: 1, handle: log, target: third, afterSeq: 0, context: 0).get()
        service.connectionClosed(9)
        await third.waitForEnd()
        #expect(third.end?.cancelled == true)
        // A watch through another instance's handle is refused.
        #expect(service.watch(instance: 2, handle: log, target: third, afterSeq: 0, context: 0) == .failure(.badArgument))
        await service.shutdown()
    }

    @Test("only the owner opens a log; anonymous logs need their secret")
    func ownership() async throws {
        let service = await self.start()
        _ = try service.create("mine").get()
        #expect(service.create("mine") == .failure(.exists))
        #expect((try? service.open("mine").get()) != nil)
        #expect(service.open("mine", owner: Fixture.bob) == .failure(.notFound))
        #expect(service.open("mine", route: "/agents/b") == .failure(.notFound))
        #expect(service.open("missing") == .failure(.notFound))
        // Another owner's key of the same name is its own log: nothing is taken, nothing is told.
        let bobs = try service.create("mine", owner: Fixture.bob).get()
        #expect(service.open("mine", owner: Fixture.bob).map { _ in true } == .success(true))
        #expect(service.append(bobs, "bob's") == .success(1))

        let secret = "0123456789abcdef-secret"
        #expect(service.create("anon", owner: .anonymous, secret: "short") == .failure(.badArgument))
        _ = try service.create("anon", owner: .anonymous, secret: secret).get()
        #expect((try? service.open("anon", owner: .anonymous, secret: secret).get()) != nil)
        #expect(service.open("anon", owner: .anonymous, secret: secret + "x") == .failure(.notFound))
        #expect(service.open("anon", owner: .anonymous) == .failure(.notFound))
        #expect(service.open("anon", owner: Fixture.alice, secret: secret) == .failure(.notFound))
        // Another anonymous starter with its own secret gets its own log under the same key.
        let other = "fedcba9876543210-other"
        _ = try service.create("anon", owner: .anonymous, secret: other).get()
        #expect((try? service.open("anon", owner: .anonymous, secret: other).get()) != nil)

        // A subject names someone; an issuer alone (a JWT without sub) does not: such logs need a secret, and two
        // callers of that issuer are told apart by their secrets only.
        let issuerOnly = RunLogOwner(issuer: "https://issuer.test", subject: "")
        #expect(issuerOnly.isAnonymous)
        #expect(service.create("nosub", owner: issuerOnly) == .failure(.badArgument))
        _ = try service.create("nosub", owner: issuerOnly, secret: secret).get()
        #expect(service.open("nosub", owner: issuerOnly) == .failure(.notFound))
        #expect(service.open("nosub", owner: issuerOnly, secret: other) == .failure(.notFound))
        #expect((try? service.open("nosub", owner: issuerOnly, secret: secret).get()) != nil)
        await service.shutdown()
    }

    @Test("signals reach the writer in order; none once the log ended")
    func signals() async throws {
        let service = await self.start()
        let recorder = SignalRecorder()
        let writer = try service.create("run", signals: recorder).get()
        let reader = try service.open("run").get()
        for i in 1 ... 20 { #expect(service.signal(reader, "s\(i)") == nil) }
        try await Self.eventually { recorder.received.count == 20 }
        #expect(recorder.received.map(\.text) == (1 ... 20).map { "s\($0)" })
        #expect(recorder.received.allSatisfy { $0.id == writer && $0.context == 7 && $0.kind == .logSignal })
        _ = service.end(handle: writer, status: "complete")
        #expect(service.signal(reader, "late") == .notFound)
        await service.shutdown()
    }

    @Test("a writer that goes away ends its log with the terminal entry")
    func writerGone() async throws {
        let clock = TestClock()
        let service = await self.start(clock: clock)
        let log = try service.create("run-7", instance: 3).get()
        service.append(log, "a")
        let reader = try service.open("run-7", instance: 4).get()
        service.releaseAll(instance: 3)
        let info = try service.info(handle: reader).get()
        #expect(info.ended)
        #expect(info.status == "error")
        #expect(info.lastSeq == 2)
        let target = self.target()
        _ = try service.watch(instance: 4, handle: reader, target: target, afterSeq: 1, context: 0).get()
        await target.waitForEnd()
        let terminal = try #require(target.entries.first)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(terminal.logBytes)) as? [String: Any])
        #expect(json["type"] as? String == "completion")
        #expect(json["status"] as? String == "error")
        #expect(json["run_id"] as? String == "run-7")
        #expect(json["seq"] as? Int == 2)
        #expect((json["error"] as? String)?.isEmpty == false)
        #expect(target.end?.text == "error")
        await service.shutdown()
    }

    @Test("byte retention drops the oldest entries; a watch from 0 starts at first_seq")
    func retention() async throws {
        var configuration = Fixture.fastConfiguration()
        configuration.retention.maxBytesPerLog = 100
        let service = await self.start(configuration: configuration)
        let log = try service.create("run").get()
        for batch in 0 ..< 5 {
            for i in 1 ... 5 { service.append(log, String(repeating: "\(batch)", count: 9) + "\(i)") }
            await service.flush()
        }
        let info = try service.info(handle: log).get()
        #expect(info.firstSeq > 1)
        #expect(info.lastSeq == 25)
        _ = service.end(handle: log, status: "complete")
        let target = self.target()
        _ = try service.watch(instance: 1, handle: log, target: target, afterSeq: 0, context: 0).get()
        await target.waitForEnd()
        #expect(target.entries.first?.seq == info.firstSeq)
        #expect(target.entries.map(\.seq) == Array(info.firstSeq ... 25))
        await service.shutdown()
    }

    @Test("a failing store: live logs go on in memory, and are stored once it works again")
    func storeFailureAndRecovery() async throws {
        let backend = MemoryRunLogBackend()
        let service = await self.start(backend)
        backend.failure.withLock { $0 = RunLogStoreError(.full, "disk full") }
        let log = try service.create("run").get()
        let target = self.target()
        _ = try service.watch(instance: 1, handle: log, target: target, afterSeq: 0, context: 0).get()
        for i in 1 ... 30 { service.append(log, "\(i)") }
        await service.flush()
        await service.flush()
        #expect(try backend.findLog(route: "/agents/a", key: Array("run".utf8)) == nil)
        try await Self.eventually { target.entries.count == 30 }

        backend.failure.withLock { $0 = nil }
        _ = service.end(handle: log, status: "complete")
        await target.waitForEnd()
        await service.flush()
        await service.flush()
        let stored = try #require(try backend.findLog(route: "/agents/a", key: Array("run".utf8)))
        #expect(stored.status == "complete")
        #expect(try backend.readEntries(logID: stored.id, from: 1, limit: 100, maxBytes: 1 << 20).map(\.seq)
            == Array(1 ... 30))
        await service.shutdown()
    }

    @Test("after a failure, a store that takes whole short runs (created and ended within a cycle) works again")
    func recoveryByShortRuns() async throws {
        let backend = MemoryRunLogBackend()
        let service = await self.start(backend)
        backend.failure.withLock { $0 = RunLogStoreError(.full, "disk full") }
        let failed = try service.create("failed").get()
        service.append(failed, "1")
        await service.flush()
        #expect(service.storeIsFailing)
        backend.failure.withLock { $0 = nil }
        // Each cycle from here stores only runs inserted whole (row and entries at once): that is storing entries,
        // so the streak ends (it went on until some run spanned two cycles: the history API answered 503 meanwhile).
        _ = service.end(handle: failed, status: "complete")
        _ = service.release(handle: failed)
        let short = try service.create("short").get()
        service.append(short, "1")
        _ = service.end(handle: short, status: "complete")
        await service.flush()
        await service.flush()
        #expect(!service.storeIsFailing)
        await service.shutdown()
    }

    @Test("a full SQLite store (SQLITE_FULL): the live run streams on from memory")
    func sqliteFull() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let service = await self.start(SQLiteRunLogBackend(path: directory.path + "/runlog.sqlite", maxPageCount: 20))
        let log = try service.create("run").get()
        let target = self.target()
        _ = try service.watch(instance: 1, handle: log, target: target, afterSeq: 0, context: 0).get()
        for _ in 1 ... 200 { service.append(log, String(decoding: incompressible(1024), as: UTF8.self)) }
        await service.flush()
        #expect(service.storeIsFailing)
        _ = service.end(handle: log, status: "complete")
        await target.waitForEnd()
        #expect(target.entries.map(\.seq) == Array(1 ... 200))
        #expect(target.end?.text == "complete")
        await service.shutdown()
    }

    @Test("past the memory limit while the store fails, the oldest unpersisted entries go")
    func memoryBound() async throws {
        let backend = MemoryRunLogBackend()
        backend.failure.withLock { $0 = RunLogStoreError(.io, "down") }
        var configuration = Fixture.fastConfiguration()
        configuration.maxUnpersistedBytes = 1 << 20
        let service = await self.start(backend, configuration: configuration)
        let log = try service.create("run").get()
        let chunk = String(repeating: "x", count: 64 << 10)
        for _ in 1 ... 40 { service.append(log, chunk) }
        await service.flush()
        let target = self.target()
        _ = try service.watch(instance: 1, handle: log, target: target, afterSeq: 0, context: 0).get()
        _ = service.end(handle: log, status: "complete")
        await target.waitForEnd()
        #expect(target.entries.count <= 16)
        #expect(target.entries.last?.seq == 40)
        await service.shutdown()
    }

    @Test("a restart ends the runs the previous server left live")
    func restartRecovery() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        let first = await self.start(SQLiteRunLogBackend(path: path))
        let live = try first.create("live").get()
        let done = try first.create("done").get()
        first.append(live, "{\"a\":1}")
        first.append(done, "{\"b\":1}")
        _ = first.end(handle: done, status: "complete")
        await first.flush()
        await first.flush()
        // The first server "dies" here: no shutdown, no release.

        let second = await self.start(SQLiteRunLogBackend(path: path))
        let reopened = try second.open("live").get()
        let info = try second.info(handle: reopened).get()
        #expect(info.status == "error")
        // Numbered past what the dead writer may have given out unstored (RunLogConfiguration.orphanSeqGap).
        #expect(info.lastSeq == 2 + RunLogConfiguration.orphanSeqGap)
        let target = self.target()
        _ = try second.watch(instance: 1, handle: reopened, target: target, afterSeq: 0, context: 0).get()
        await target.waitForEnd()
        #expect(target.entries.first?.text == "{\"a\":1}")
        #expect(target.entries.last?.text.contains("the server restarted") == true)
        #expect(target.end?.text == "error")
        let ended = try second.open("done").get()
        #expect(try second.info(handle: ended).get().status == "complete")
        await second.shutdown()
        await first.shutdown()
    }

    @Test("a stopping server empties the WAL: the database file alone holds every run")
    func stopEmptiesTheWAL() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        let service = await self.start(SQLiteRunLogBackend(path: path))
        let log = try service.create("run").get()
        for i in 1 ... 100 { service.append(log, "{\"n\":\(i)}") }
        _ = service.end(handle: log, status: "complete")
        await service.flush()
        await service.flush()
        let walSize = { ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? NSNumber)?.intValue ?? 0 }
        #expect(walSize() > 0)
        await service.shutdown()
        #expect(walSize() == 0)
        // A copy of the file alone has the run.
        let copy = directory.path + "/copy.sqlite"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        let copied = SQLiteRunLogBackend(path: copy)
        let record = try #require(try copied.findLog(route: "/agents/a", key: Array("run".utf8)))
        #expect(record.status == "complete")
        #expect(try copied.readEntries(logID: record.id, from: 1, limit: 200, maxBytes: 1 << 20).count == 100)
    }

    @Test("a restart ends a live run whose stored last_seq leaves no room for its terminal entry, without trapping")
    func restartRecoveryOfDamagedSeq() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        let first = await self.start(SQLiteRunLogBackend(path: path))
        let live = try first.create("live").get()
        first.append(live, "{\"a\":1}")
        await first.flush()
        await first.flush()
        // Damaged behind the host's back: numbering the terminal entry past it trapped every start (Int64 overflow).
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE logs SET last_seq = ?", arguments: [Int64.max - 5])
        }
        let second = await self.start(SQLiteRunLogBackend(path: path))
        let info = try second.info(handle: try second.open("live").get()).get()
        #expect(info.status == "error")
        #expect(info.lastSeq == UInt64(Int64.max - 5))
        await second.shutdown()
        await first.shutdown()
    }

    @Test("a store that fails at start: the previous server's runs are ended once it works")
    func orphansAfterRecovery() async throws {
        let backend = MemoryRunLogBackend()
        let first = await self.start(backend)
        let log = try first.create("run").get()
        first.append(log, "a")
        await first.flush()
        await first.shutdown()  // its writer handle is never released: the run stays live in the store

        backend.failure.withLock { $0 = RunLogStoreError(.readOnly, "read-only file system") }
        let second = await self.start(backend)
        #expect(try backend.findLog(route: "/agents/a", key: Array("run".utf8))?.status == "live")
        #expect(second.open("run") == .failure(.unavailable), "the index could not be read yet")
        backend.failure.withLock { $0 = nil }
        await second.flush()
        let ended = try #require(try backend.findLog(route: "/agents/a", key: Array("run".utf8)))
        #expect(ended.status == "error")
        #expect(ended.lastSeq == 2 + RunLogConfiguration.orphanSeqGap)
        // Its index was loaded once the store worked: the run is there to open (a lone process read it only at start).
        #expect((try? second.open("run").get()) != nil)
        await second.shutdown()
    }

    /// Watchers of one store log share its object: one that reads the store and learns of new entries (or the end)
    /// must wake another waiting on it, or that one waits for a poll that then finds nothing new and, once the log
    /// ended, never comes.
    @Test("a watcher catching up on another process's log wakes the one waiting at its tip")
    func remoteCatchUpWakesTheWaitingWatcher() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        var configuration = Fixture.fastConfiguration()
        configuration.endOrphansAtStart = false
        let writer = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: configuration)
        let log = try writer.create("run").get()
        writer.append(log, "1")
        await writer.flush()
        // The reader never polls after its start: only watch reads can tell it anything.
        configuration.flushInterval = .hours(1)
        configuration.idleInterval = .hours(1)
        let reader = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: configuration)
        let waiting = self.target(1)
        _ = try reader.watch(instance: 1, handle: try reader.open("run").get(), target: waiting, afterSeq: 0,
                             context: 0).get()
        try await Self.eventually { waiting.entries.count == 1 }
        writer.append(log, "2")
        _ = writer.end(handle: log, status: "complete")
        await writer.flush()
        let catchingUp = self.target(2)
        _ = try reader.watch(instance: 1, handle: try reader.open("run").get(), target: catchingUp, afterSeq: 0,
                             context: 0).get()
        try await Self.eventually { catchingUp.end != nil }
        try await Self.eventually { waiting.end != nil }
        #expect(waiting.entries.map(\.text) == ["1", "2"])
        #expect(waiting.end?.text == "complete")
        await writer.shutdown()
        await reader.shutdown()
    }

    @Test("another process's log: watched by polling the store, signalled through it")
    func crossProcess() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        var writerConfiguration = Fixture.fastConfiguration()
        writerConfiguration.endOrphansAtStart = false
        var readerConfiguration = Fixture.fastConfiguration()
        readerConfiguration.endOrphansAtStart = false
        let writer = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: writerConfiguration)
        let reader = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: readerConfiguration)
        let recorder = SignalRecorder()
        let log = try writer.create("run", signals: recorder).get()
        writer.append(log, "1")
        await writer.flush()
        await reader.flush()
        let remote = try reader.open("run").get()
        let target = self.target()
        _ = try reader.watch(instance: 1, handle: remote, target: target, afterSeq: 0, context: 0).get()
        #expect(reader.signal(remote, "stop") == nil)
        try await Self.eventually { recorder.received.map(\.text) == ["stop"] }
        for i in 2 ... 30 { writer.append(log, "\(i)") }
        _ = writer.end(handle: log, status: "complete")
        await target.waitForEnd()
        #expect(target.entries.map(\.text) == (1 ... 30).map { "\($0)" })
        #expect(target.end?.text == "complete")
        await writer.shutdown()
        await reader.shutdown()
    }

    /// Twenty sockets watching one run another worker writes: the store is asked once per log and cycle whether
    /// there is more, and read only when there is; not every watcher polling on its own.
    @Test("watchers of another process's log share one poll and read only when there is something new")
    func remoteWatchersSharePolls() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        var configuration = Fixture.fastConfiguration()
        configuration.endOrphansAtStart = false
        let writer = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: configuration)
        let counting = CountingBackend(SQLiteRunLogBackend(path: path, shared: true))
        let reader = await self.start(counting, configuration: configuration)
        let log = try writer.create("run").get()
        writer.append(log, "1")
        await writer.flush()
        await reader.flush()
        let targets = (0 ..< 20).map { self.target(UInt64(100 + $0)) }
        for target in targets {
            let handle = try reader.open("run").get()
            _ = try reader.watch(instance: 1, handle: handle, target: target, afterSeq: 0, context: 0).get()
        }
        try await Self.eventually { targets.allSatisfy { $0.entries.count == 1 } }
        let afterFirst = counting.entryReads
        // 40 cycles of 5 ms with nothing new: no watcher reads (polling each on its own made 20 reads a cycle).
        for _ in 0 ..< 40 { await reader.flush() }
        #expect(counting.entryReads == afterFirst)
        writer.append(log, "2")
        _ = writer.end(handle: log, status: "complete")
        await writer.flush()
        for target in targets { await target.waitForEnd() }
        #expect(targets.allSatisfy { $0.entries.map(\.text) == ["1", "2"] && $0.end?.text == "complete" })
        #expect(counting.entryReads <= afterFirst + 2 * targets.count)
        await writer.shutdown()
        await reader.shutdown()
    }

    @Test("another process's log is opened as soon as it is stored, before this process's index learns of it")
    func openBeforeTheIndexRefresh() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        var configuration = Fixture.fastConfiguration()
        configuration.endOrphansAtStart = false
        let writer = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: configuration)
        // The reader refreshes its index at start, then not for an hour (a client resuming at once on another
        // worker meets such a stale index).
        configuration.idleInterval = .hours(1)
        configuration.pollInterval = .hours(1)
        let reader = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: configuration)
        let log = try writer.create("fresh").get()
        writer.append(log, "1")
        await writer.flush()
        #expect((try? reader.open("fresh").get()) != nil)
        #expect(reader.open("fresh", owner: Fixture.bob) == .failure(.notFound))
        #expect(reader.open("never") == .failure(.notFound))
        await writer.shutdown()
        await reader.shutdown()
    }

    /// A client that sends the same run to two workers at once: both create the log before either stored it. The
    /// one stored second loses: its log ends with the terminal entry saying why (its writer's appends are CLOSED),
    /// and once it leaves, that worker's opens reach the winner's log.
    @Test("a run created on two workers at the same moment: the copy stored second is ended, not kept in memory")
    func sameRunOnTwoWorkers() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        var configuration = Fixture.fastConfiguration()
        configuration.endOrphansAtStart = false
        // Cycles only when flushed: both creates happen before either worker stores anything.
        configuration.flushInterval = .hours(1)
        configuration.idleInterval = .hours(1)
        let first = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: configuration)
        let second = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: configuration)
        let winner = try first.create("run").get()
        let loser = try second.create("run", instance: 2).get()
        first.append(winner, "from the first")
        second.append(loser, "from the second")
        let watched = try second.open("run", instance: 2).get()
        let target = self.target()
        _ = try second.watch(instance: 2, handle: watched, target: target, afterSeq: 0, context: 0).get()
        await first.flush()
        await second.flush()
        await target.waitForEnd()
        // While the loser is still in memory (its watch holds it), an open reaches the winner's run.
        let early = try second.open("run", instance: 2).get()
        #expect(try !second.info(handle: early).get().ended)
        _ = second.release(handle: early)
        #expect(target.entries.first?.text == "from the second")
        let terminal = try #require(target.entries.last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(terminal.logBytes)) as? [String: Any])
        #expect(json["type"] as? String == "completion")
        #expect((json["stop_reason"] as? String)?.contains("another worker") == true, "\(json)")
        #expect(target.end?.text == "error")
        #expect(second.append(loser, "more") == .failure(.closed))
        #expect(first.append(winner, "more") == .success(2))
        // The loser leaves memory with its last handle; the winner's log is what the second worker opens now.
        _ = second.release(handle: watched)
        _ = second.release(handle: loser)
        await first.flush()
        await second.flush()
        #expect(second.logsInMemory == 0)
        let reopened = try second.open("run", instance: 2).get()
        let info = try second.info(handle: reopened).get()
        #expect(!info.ended)
        await first.shutdown()
        await second.shutdown()
    }

    /// Retention on one worker deletes an ended log another worker's index still names (it re-reads its index on
    /// the prune timer only): an open there is NOT_FOUND, and the key can start a new run, at once. Also when the
    /// other worker's index learnt of the log while it was live (its index keeps that status until a full read).
    @Test("a log a sibling's retention deleted is not opened from a stale index, and its key can be used again",
          arguments: [false, true])
    func prunedBySibling(indexedWhileLive: Bool) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/runlog.sqlite"
        var configuration = Fixture.fastConfiguration()
        configuration.endOrphansAtStart = false
        let clock = TestClock()
        let writer = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: configuration,
                                      clock: clock)
        let reader = await self.start(SQLiteRunLogBackend(path: path, shared: true), configuration: configuration,
                                      clock: clock)
        let log = try writer.create("old").get()
        writer.append(log, "1")
        if indexedWhileLive {
            await writer.flush()
            await reader.flush()
            let live = try reader.open("old").get()
            #expect(try reader.info(handle: live).get().ended == false)
            _ = reader.release(handle: live)
        }
        _ = writer.end(handle: log, status: "complete")
        _ = writer.release(handle: log)
        await writer.flush()
        await reader.flush()
        let before = try reader.open("old").get()  // the reader's index knows it
        _ = reader.release(handle: before)
        // The sibling's retention, as its prune would run it.
        var policy = RunLogRetention()
        policy.maxEndedAgeSeconds = 1
        let pruned = try SQLiteRunLogBackend(path: path, shared: true).prune(
            policy, nowMilliseconds: clock.nowMilliseconds() + 60_000)
        #expect(pruned.count == 1)
        #expect(reader.open("old") == .failure(.notFound))
        let again = try reader.create("old").get()
        #expect(reader.append(again, "new") == .success(1))
        await writer.shutdown()
        await reader.shutdown()
    }

    /// With writes failing, a run a sibling worker started may exist only in its memory: an open that misses is
    /// UNAVAILABLE (try again), not NOT_FOUND ("no such run"). New logs stored again end that at once.
    @Test("a shared store whose writes fail: an unknown run is UNAVAILABLE, and NOT_FOUND once new logs are stored")
    func openMissWhileWritesFail() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let backend = CountingBackend(SQLiteRunLogBackend(path: directory.path + "/runlog.sqlite", shared: true))
        var configuration = Fixture.fastConfiguration()
        configuration.endOrphansAtStart = false
        let service = await self.start(backend, configuration: configuration)
        #expect(service.open("nothing") == .failure(.notFound))
        backend.writeFailure.withLock { $0 = RunLogStoreError(.io, "disk full") }
        let log = try service.create("run").get()
        service.append(log, "1")
        await service.flush()
        #expect(service.storeIsFailing)
        #expect(service.open("nothing") == .failure(.unavailable))
        backend.writeFailure.withLock { $0 = nil }
        await service.flush()
        #expect(service.open("nothing") == .failure(.notFound))
        await service.shutdown()
    }

    @Test("an ended log leaves memory once its last handle goes, also when that is after its end was stored")
    func endedLogLeavesMemory() async throws {
        let service = await self.start()
        let writer = try service.create("run").get()
        let reader = try service.open("run").get()
        service.append(writer, "one")
        #expect(service.end(handle: writer, status: "complete") == nil)
        #expect(service.release(handle: writer) == nil)
        await service.flush()
        await service.flush()
        #expect(service.logsInMemory == 1, "a reader still holds it")
        #expect(service.release(handle: reader) == nil)  // a slow socket's watch finished late
        await service.flush()
        #expect(service.logsInMemory == 0)
        #expect((try? service.open("run").get()) != nil, "the store answers for it now")
        await service.shutdown()
    }

    @Test("a client that saw entries a dead writer never stored still gets the terminal entry on resume")
    func orphanTerminalComesAfterUnstoredEntries() async throws {
        let backend = MemoryRunLogBackend()
        var slow = Fixture.fastConfiguration(incarnation: "dead")
        slow.flushInterval = .hours(1)
        slow.idleInterval = .hours(1)
        let dead = await self.start(backend, configuration: slow)
        let writer = try dead.create("run").get()
        for i in 1 ... 3 { dead.append(writer, "frame \(i)") }
        await dead.flush()  // 1...3 stored
        for i in 4 ... 5 { dead.append(writer, "frame \(i)") }  // 4, 5 in memory only: a client saw them live
        // The process dies here (nothing more is stored); a new server starts on the same store.
        let next = await self.start(backend)
        let reader = try next.open("run").get()
        let target = self.target(9)
        _ = try next.watch(instance: 1, handle: reader, target: target, afterSeq: 5, context: 0).get()
        await target.waitForEnd()
        #expect(target.entries.map(\.seq) == [4 + RunLogConfiguration.orphanSeqGap])
        #expect(target.entries.first?.text.contains("\"type\":\"completion\"") == true)
        #expect(target.end?.text == "error")
        await next.shutdown()
        await dead.shutdown()  // only its thread: the test is over
    }

    @Test("bad arguments")
    func badArguments() async throws {
        let service = await self.start()
        #expect(service.create("") == .failure(.badArgument))
        #expect(service.create(String(repeating: "k", count: 129)) == .failure(.badArgument))
        let log = try service.create("run").get()
        let reader = try service.open("run").get()
        #expect(service.append(reader, "not the writer") == .failure(.badArgument))
        #expect(service.end(handle: log, status: "") == .badArgument)
        #expect(service.end(handle: log, status: String(repeating: "s", count: 32)) == .badArgument)
        let big = [UInt8](repeating: 1, count: (1 << 20) + 1)
        #expect(big.withUnsafeBytes { service.append(handle: log, bytes: $0) } == .failure(.badArgument))
        #expect(service.info(handle: 999) == .failure(.badArgument))
        await service.shutdown()
    }

    @Test("retention runs as soon as enough logs ended, not only on its timer")
    func pruneByCount() async throws {
        let backend = MemoryRunLogBackend()
        var configuration = Fixture.fastConfiguration()  // its prune timer is an hour
        configuration.retention.maxEndedLogs = 16  // so a prune is due every 64 ended logs
        let service = await self.start(backend, configuration: configuration)
        for index in 0 ..< 200 {
            let log = try service.create("run-\(index)").get()
            service.append(log, "frame")
            _ = service.end(handle: log, status: "complete")
            service.release(handle: log)
        }
        // 200 ended logs, pruned at least every 64: never more than 16 + 64 kept, and 16 once the last prune ran.
        try await Self.eventually {
            let kept = (try? backend.listLogs(issuer: Fixture.alice.issuer, subject: Fixture.alice.subject, route: nil,
                                              limit: 1000).count) ?? 0
            return kept <= 16 + 64
        }
        // What retention deleted leaves this process's index too (it is not read again from the store).
        // (A handle keeps its log in memory: each probe gives its own back.)
        try await Self.eventually {
            guard let handle = try? service.open("run-0").get() else { return true }
            _ = service.release(handle: handle)
            return false
        }
        #expect(service.open("run-0") == .failure(.notFound))
        #expect(service.open("run-199").map { _ in 0 } == .success(0))
        await service.shutdown()
    }

    /// Polls a condition the service reaches on its own threads (bounded: fails after 10 s).
    static func eventually(_ condition: @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not reached in 10 s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
