import AgentHostRunLogFake
import Foundation
import Testing
@testable import AgentHostAgentSDK
@testable import AgentHostPluginSDK

/// Runs on the host's run log, through the SDK's real sessions and the C table (`FakeHost`): the starter's socket
/// watches the log like a resumer, resume reads the log byte for byte on any socket and any generation, and
/// `stop` / `input_response` reach a run written by another generation through its log's signal.
@Suite("runs on the run log")
struct RunLogSessionTests {
    static let alice = RunOwner(issuer: "https://idp", subject: "alice")

    static func start(_ session: AgentSession, _ id: String) {
        session.didReceive(.text("{\"type\":\"start\",\"run_id\":\"\(id)\",\"task\":\"hello\"}"))
    }

    static func record(_ core: AgentCore, _ id: String, owner: RunOwner = alice, token: String? = nil) throws -> RunRecord {
        try #require(core.registry.lookup(RunKey(route: "/agents/test", owner: owner, resumeToken: token, id: id)))
    }

    static func object(_ frame: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(frame.utf8))) as? [String: Any] ?? [:]
    }

    /// The frames of `runID` among what a socket got.
    static func runFrames(_ fake: FakeConnection, _ runID: String) -> [String] {
        fake.sent.filter { Self.object($0)["run_id"] as? String == runID && Self.object($0)["seq"] != nil }
    }

    static func event(_ text: String) -> AgentEvent { AutoGenEvent.textMessage(source: "assistant", content: text) }

    @Test func theStarterGetsTheLogsFramesAndTheirSeqIsTheLogs() async throws {
        let host = FakeHost()
        let core = FakeConnection.core(host)
        let fake = FakeConnection(host: host)
        let session = fake.session(core)
        Self.start(session, "run-1")
        let record = try Self.record(core, "run-1")
        for word in ["one", "two", "three"] { try await record.emit(Self.event(word)) }
        record.complete(.completed(stopReason: nil))
        #expect(Self.runFrames(fake, "run-1").isEmpty, "frames come through the watch only")
        host.pump()
        let log = host.entries(route: "/agents/test", key: "run-1")
        #expect(log.count == 4)
        #expect(Self.runFrames(fake, "run-1") == log, "the socket got the log's bytes")
        #expect(log.enumerated().allSatisfy { Self.object($1)["seq"] as? Int == $0 + 1 })
        #expect(host.endStatus(route: "/agents/test", key: "run-1") == "complete")
        #expect(core.registry.liveCount == 0)
        #expect(session.streamingRunIDs.isEmpty, "an ended run leaves the socket's table")
        #expect(host.openHandles == 0 && host.activeWatches == 0, "every handle and watch was released")
    }

    @Test func aResumeOnAnotherGenerationGetsEveryFrameOnceInOrderAndCanStopTheRun() async throws {
        let host = FakeHost()
        let old = FakeConnection.core(host)
        let new = FakeConnection.core(host)
        let first = FakeConnection(host: host)
        let firstSession = first.session(old)
        Self.start(firstSession, "run-2")
        let record = try Self.record(old, "run-2")
        for word in ["a", "b", "c"] { try await record.emit(Self.event(word)) }
        host.pump()
        // The client saw two frames, then its socket dropped.
        let seen = Array(Self.runFrames(first, "run-2").prefix(2))
        first.disconnect(firstSession)
        host.pump()
        try await record.emit(Self.event("d"))

        let second = FakeConnection(host: host)
        let secondSession = second.session(new)
        secondSession.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"run-2\",\"last_seq\":2}"))
        host.pump()
        try await record.emit(Self.event("e"))
        host.pump()
        // stop through the new generation reaches the old one's writer as a signal.
        secondSession.didReceive(.text("{\"type\":\"stop\",\"run_id\":\"run-2\",\"reason\":\"enough\"}"))
        host.pump()
        #expect(record.isFinished)
        host.pump()
        let all = seen + Self.runFrames(second, "run-2")
        #expect(all == host.entries(route: "/agents/test", key: "run-2"))
        #expect(all.map { Self.object($0)["seq"] as? Int } == Array(1...6), "a b c d e, then the completion")
        #expect(Self.object(all.last!)["type"] as? String == "completion")
        #expect(Self.object(all.last!)["status"] as? String == "cancelled")
        #expect(host.openHandles == 0 && host.activeWatches == 0)
    }

    @Test func inputFromAnotherGenerationReachesTheWriter() async throws {
        let host = FakeHost()
        let old = FakeConnection.core(host)
        let new = FakeConnection.core(host)
        let first = FakeConnection(host: host)
        Self.start(first.session(old), "run-3")
        let record = try Self.record(old, "run-3")
        let answer = Task { try await record.requestInput(prompt: "?", requestID: "q1", event: Self.event("ask")) }
        while !record.isWaitingForInput { await Task.yield() }
        let second = FakeConnection(host: host)
        let session = second.session(new)
        session.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"run-3\",\"last_seq\":0}"))
        session.didReceive(.text("{\"type\":\"input_response\",\"run_id\":\"run-3\",\"response\":\"yes\"}"))
        host.pump()
        #expect(try await answer.value == "yes")
        record.complete(.completed(stopReason: nil))
        host.pump()
        #expect(Self.object(Self.runFrames(second, "run-3").last!)["type"] as? String == "result")
    }

    @Test func aResumeOnThisInstanceMovesTheRunToTheNewSocket() async throws {
        let host = FakeHost()
        let core = FakeConnection.core(host)
        let first = FakeConnection(host: host)
        let second = FakeConnection(host: host)
        let firstSession = first.session(core)
        Self.start(firstSession, "run-4")
        let record = try Self.record(core, "run-4")
        try await record.emit(Self.event("a"))
        host.pump()
        let secondSession = second.session(core)
        secondSession.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"run-4\",\"last_seq\":1}"))
        try await record.emit(Self.event("b"))
        host.pump()
        #expect(Self.runFrames(first, "run-4").count == 1, "the old socket stopped streaming it")
        #expect(Self.runFrames(second, "run-4").map { Self.object($0)["seq"] as? Int } == [2])
        #expect(firstSession.streamingRunIDs.isEmpty)
        record.complete(.completed(stopReason: nil))
        host.pump()
    }

    @Test func aRunWhoseWriterWentAwayEndsWithTheHostsTerminalFrame() async throws {
        let host = FakeHost()
        let old = FakeConnection.core(host)
        let first = FakeConnection(host: host)
        Self.start(first.session(old), "run-5")
        try await Self.record(old, "run-5").emit(Self.event("a"))
        host.writerWentAway(route: "/agents/test", key: "run-5", reason: "the worker died")
        let second = FakeConnection(host: host)
        let secondSession = second.session(FakeConnection.core(host))
        secondSession.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"run-5\",\"last_seq\":1}"))
        host.pump()
        let frames = Self.runFrames(second, "run-5")
        #expect(frames.count == 1)
        #expect(Self.object(frames[0])["status"] as? String == "error")
        #expect(Self.object(frames[0])["seq"] as? Int == 2)
    }

    @Test func framesTheHostNoLongerKeepsAreAResumeGap() async throws {
        let host = FakeHost()
        let core = FakeConnection.core(host)
        let fake = FakeConnection(host: host)
        Self.start(fake.session(core), "run-6")
        let record = try Self.record(core, "run-6")
        for word in ["a", "b", "c", "d"] { try await record.emit(Self.event(word)) }
        record.complete(.completed(stopReason: nil))
        host.dropEntries(route: "/agents/test", key: "run-6", through: 2)
        let other = FakeConnection(host: host)
        let session = other.session(core)
        session.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"run-6\",\"last_seq\":1}"))
        let gap = Self.object(try #require(other.sent.last))
        #expect(gap["code"] as? String == "resume_gap")
        #expect(gap["first_seq"] as? Int == 3)
        session.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"run-6\",\"last_seq\":2}"))
        host.pump()
        #expect(Self.runFrames(other, "run-6").map { Self.object($0)["seq"] as? Int } == [3, 4, 5])
    }

    @Test func anotherIdentityOrAnAnonymousClientWithoutTheTokenFindsNothing() async throws {
        let host = FakeHost()
        let core = FakeConnection.core(host)
        let alice = FakeConnection(host: host)
        Self.start(alice.session(core), "run-7")
        let bob = FakeConnection(host: host, subject: "bob")
        bob.session(core).didReceive(.text("{\"type\":\"resume\",\"run_id\":\"run-7\"}"))
        #expect(Self.object(try #require(bob.sent.last))["code"] as? String == "unknown_run")
        bob.session(core).didReceive(.text("{\"type\":\"stop\",\"run_id\":\"run-7\"}"))
        #expect(Self.object(try #require(bob.sent.last))["code"] as? String == "unknown_run")
        #expect(try !Self.record(core, "run-7").isFinished)
        // Bob's own run-7 is another run in another log (the host names logs by owner): no run_exists oracle.
        let bobSession = bob.session(core)
        Self.start(bobSession, "run-7")
        let bobsRun = try Self.record(core, "run-7", owner: RunOwner(issuer: "https://idp", subject: "bob"))
        #expect(host.logCount(route: "/agents/test", key: "run-7") == 2)
        try await bobsRun.emit(Self.event("bob's"))
        host.pump()
        #expect(!host.entries(route: "/agents/test", key: "run-7", subject: "alice").contains { $0.contains("bob's") })
        #expect(host.entries(route: "/agents/test", key: "run-7", subject: "bob").count == 1)

        // Anonymous: the first frame carries the token; only it opens the run elsewhere.
        let anon = FakeConnection(host: host, subject: "")
        let anonSession = anon.session(core)  // the host's connection box keeps a session alive; here, the test
        Self.start(anonSession, "run-8")
        let anonOwner = RunOwner(issuer: "https://idp", subject: "")
        let token = try #require(core.registry.liveRecord(id: "run-8")?.key.resumeToken)
        try await Self.record(core, "run-8", owner: anonOwner, token: token).emit(Self.event("a"))
        host.pump()
        #expect(Self.object(Self.runFrames(anon, "run-8")[0])["resume_token"] as? String == token)
        let stranger = FakeConnection(host: host, subject: "")
        let strangerSession = stranger.session(core)
        strangerSession.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"run-8\"}"))
        #expect(Self.object(try #require(stranger.sent.last))["code"] as? String == "unknown_run")
        strangerSession.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"run-8\",\"resume_token\":\"\(token)\"}"))
        host.pump()
        #expect(Self.runFrames(stranger, "run-8").count == 1)
    }

    @Test func aRunIDIsOnePerRoute() throws {
        let host = FakeHost()
        let core = FakeConnection.core(host)
        let alice = FakeConnection(host: host)
        let session = alice.session(core)
        Self.start(session, "run-9")
        try Self.record(core, "run-9").complete(.completed(stopReason: nil))
        host.pump()
        Self.start(session, "run-9")
        #expect(Self.object(try #require(alice.sent.last))["code"] as? String == "run_exists")
        #expect(core.registry.liveCount == 0, "the refused start holds no live slot")
    }

    /// A run started on `old` (resume grace 1 s, `clock`) whose starter's socket went away, resumed by a socket of
    /// another generation or worker (`new`).
    struct Resumed {
        let host = FakeHost()
        let clock = TestClock()
        let old: AgentCore
        let new: AgentCore
        let record: RunRecord
        let second: FakeConnection
        let secondSession: AgentSession

        init(_ id: String) throws {
            var options = AgentRouteOptions()
            options.resumeGraceMilliseconds = 1000
            self.old = FakeConnection.core(self.host, options: options, clock: self.clock)
            self.new = FakeConnection.core(self.host, options: options, clock: self.clock)
            let first = FakeConnection(host: self.host)
            let firstSession = first.session(self.old)
            RunLogSessionTests.start(firstSession, id)
            self.record = try RunLogSessionTests.record(self.old, id)
            first.disconnect(firstSession)
            self.host.pump()
            self.second = FakeConnection(host: self.host)
            self.secondSession = self.second.session(self.new)
            self.secondSession.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"\(id)\"}"))
            self.host.pump()
        }
    }

    @Test func aRunNobodyWatchesIsCancelledAfterTheGraceButNotWhileARemoteSocketWatches() async throws {
        // A socket of the next generation resumes it: it tells the writer it watches.
        let resumed = try Resumed("run-10")
        let (host, clock, old, record) = (resumed.host, resumed.clock, resumed.old, resumed.record)
        let (second, secondSession) = (resumed.second, resumed.secondSession)
        clock.advance(5)
        old.registry.sweep(now: clock.now)
        #expect(!record.isFinished, "a remote socket watches it")
        second.disconnect(secondSession)
        host.pump()
        clock.advance(0.5)
        old.registry.sweep(now: clock.now)
        #expect(!record.isFinished)
        clock.advance(0.6)
        old.registry.sweep(now: clock.now)
        #expect(record.isFinished)
        #expect(host.endStatus(route: "/agents/test", key: "run-10") == "cancelled")
    }

    @Test func aRemoteWatcherThatStopsRenewingNoLongerKeepsTheRunAlive() async throws {
        // A worker's socket resumes it and never says not_watching; its sweep renews the lease while it lives.
        let resumed = try Resumed("run-lease")
        let (host, clock, old, new, record) = (resumed.host, resumed.clock, resumed.old, resumed.new, resumed.record)
        #expect(new.registry.renewedWatchCount == 1)
        for _ in 0..<9 {
            clock.advance(RunSignal.watchRenewal)
            new.registry.sweep(now: clock.now)
            host.pump()
            old.registry.sweep(now: clock.now)
        }
        #expect(!record.isFinished, "renewed for 90 s, three times its lease")
        // The worker dies: no renewal, no not_watching. The run ends at the lease's deadline plus the grace.
        clock.advance(RunSignal.watchLease - 0.1)
        old.registry.sweep(now: clock.now)
        #expect(!record.isFinished)
        clock.advance(1.2)
        old.registry.sweep(now: clock.now)
        #expect(record.isFinished)
        #expect(host.endStatus(route: "/agents/test", key: "run-lease") == "cancelled")
        host.pump()
        #expect(new.registry.renewedWatchCount == 0, "its watch ended with the run")
    }

    @Test func liveRunLimitsPerIdentityStillHold() throws {
        var options = AgentRouteOptions()
        options.maxRunsPerIdentity = 2
        let host = FakeHost()
        let core = FakeConnection.core(host, options: options)
        let fake = FakeConnection(host: host)
        let session = fake.session(core)
        for id in ["l1", "l2", "l3"] { Self.start(session, id) }
        #expect(Self.object(try #require(fake.sent.last))["code"] as? String == "too_many_runs")
        #expect(core.registry.liveCount == 2)
        try Self.record(core, "l1").finish(.cancelled, reason: "test")
        Self.start(session, "l4")
        #expect(core.registry.liveCount == 2)
    }

    @Test func resumesCountAgainstTheSocketsStreamLimit() async throws {
        let host = FakeHost()
        let starter = FakeConnection.core(host)
        let starting = FakeConnection(host: host)
        let startingSession = starting.session(starter)
        for id in ["r1", "r2", "r3"] {
            Self.start(startingSession, id)
            try Self.record(starter, id).complete(.completed(stopReason: nil))
        }
        host.pump()
        var options = AgentRouteOptions()
        options.maxRunsPerConnection = 2
        let resumer = FakeConnection.core(host, options: options)
        let fake = FakeConnection(host: host)
        let session = fake.session(resumer)
        // Nothing is pumped: a client that does not read keeps its streams open, each holding frames for it.
        for id in ["r1", "r2", "r3"] { session.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"\(id)\",\"last_seq\":0}")) }
        let refusal = Self.object(try #require(fake.sent.last))
        #expect(refusal["code"] as? String == "too_many_runs")
        #expect(refusal["run_id"] as? String == "r3")
        #expect(Set(session.streamingRunIDs) == ["r1", "r2"])
        // A resume of a run the socket streams replaces that stream: not one more.
        let sent = fake.sent.count
        session.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"r1\",\"last_seq\":0}"))
        #expect(!fake.sent.dropFirst(sent).contains { Self.object($0)["code"] as? String == "too_many_runs" })
        host.pump()
        #expect(Self.runFrames(fake, "r2").count == 1, "its one frame: the completion")
    }

    @Test func anAgentRouteRefusesAHostWithoutTheRunLog() {
        let host = FakeHost(abiMinor: 0)
        #expect(throws: AgentRunError.self) {
            _ = try AgentPlugin<IdleRoute>(host: PluginHost(api: host.api, context: nil), config: Array("{}".utf8))
        }
    }
}

extension RunLogSessionTests {
    /// A frame the host refuses (over its entry limit) ends the run with one small terminal frame that says so.
    @Test func aRefusedTerminalFrameStillEndsTheRunWithOne() async throws {
        let host = FakeHost()
        host.setMaxEntryBytes(4096)
        let core = FakeConnection.core(host)
        let fake = FakeConnection(host: host)
        let session = fake.session(core)
        Self.start(session, "big")
        let record = try Self.record(core, "big")
        for _ in 0..<3 { try await record.emit(Self.event(String(repeating: "x", count: 2000))) }
        record.complete(.completed(stopReason: nil))  // the TaskResult quotes all three: over 4096 bytes
        host.pump()
        let frames = Self.runFrames(fake, "big")
        #expect(frames.count == 4)
        #expect(Self.object(frames[3])["type"] as? String == "completion")
        #expect(Self.object(frames[3])["status"] as? String == "error")
        #expect(host.endStatus(route: "/agents/test", key: "big") == "error")
        _ = session
    }
}

extension RunLogSessionTests {
    /// The host's retention may drop frames a slow socket has not read: the socket is told (resume_gap, with the
    /// oldest kept), then the stream goes on.
    @Test func aSlowSocketIsToldOfFramesRetentionDropped() async throws {
        let host = FakeHost()
        let core = FakeConnection.core(host)
        let fake = FakeConnection(host: host)
        let session = fake.session(core)
        Self.start(session, "slow")
        let record = try Self.record(core, "slow")
        for word in ["a", "b", "c", "d"] { try await record.emit(Self.event(word)) }
        host.dropEntries(route: "/agents/test", key: "slow", through: 2)
        host.pump()
        let sent = fake.sent.map(Self.object)
        #expect(sent.map { $0["code"] as? String ?? $0["type"] as? String } == ["resume_gap", "message", "message"])
        #expect(sent.first?["first_seq"] as? Int == 3)
        #expect(sent.first?["error"] as? String == "any frames after 0 are not in the run log (retention dropped them, or "
            + "the server stopped before storing them); the stream goes on from 3")
        record.complete(.completed(stopReason: nil))
        host.pump()
        _ = session
    }

    /// A writer whose process died leaves a gap before the host's terminal entry (numbered 2^20 past the last
    /// stored one): a socket streaming the run is told, with a text true for that cause too.
    @Test func aStreamIsToldOfFramesLostWhenTheWriterDied() async throws {
        let host = FakeHost()
        let old = FakeConnection.core(host)
        let first = FakeConnection(host: host)
        let firstSession = first.session(old)
        Self.start(firstSession, "crash")
        let record = try Self.record(old, "crash")
        for word in ["a", "b"] { try await record.emit(Self.event(word)) }
        host.pump()
        let reader = FakeConnection(host: host)
        let readerSession = reader.session(FakeConnection.core(host))
        readerSession.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"crash\",\"last_seq\":2}"))
        host.writerWentAway(route: "/agents/test", key: "crash", reason: "the worker died", crashed: true)
        host.pump()
        let sent = reader.sent.map(Self.object).filter { $0["run_id"] as? String == "crash" }
        #expect(sent.map { $0["code"] as? String ?? $0["type"] as? String } == ["resume_gap", "completion"])
        let terminal = 3 + (1 << 20) - 1
        #expect(sent.first?["first_seq"] as? Int == terminal)
        #expect(sent.first?["error"] as? String == "any frames after 2 are not in the run log (retention dropped them, or "
            + "the server stopped before storing them); the stream goes on from \(terminal)")
        _ = (firstSession, readerSession)
    }
}

extension RunLogSessionTests {
    /// Another worker's retention deleted the run this socket follows (its watch ends with no status): the client
    /// is told the run is gone instead of waiting for a terminal frame (an attack saw a resume hang for 75 s).
    @Test func aStreamWhoseRunIsDeletedIsToldTheRunIsGone() async throws {
        let host = FakeHost()
        let writer = FakeConnection(host: host)
        let writerSession = writer.session(FakeConnection.core(host))
        Self.start(writerSession, "pruned")
        host.pump()
        let reader = FakeConnection(host: host)
        let readerSession = reader.session(FakeConnection.core(host))
        readerSession.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"pruned\",\"last_seq\":0}"))
        host.pump()
        host.deleteLog(route: "/agents/test", key: "pruned")
        host.pump()
        let last = Self.object(try #require(reader.sent.last))
        #expect(last["code"] as? String == "unknown_run")
        #expect(last["run_id"] as? String == "pruned")
        #expect((last["error"] as? String)?.contains("no longer exists") == true)
        _ = (writerSession, readerSession)
    }

    /// An anonymous client names the runs of its own socket without the token, also once they ended.
    @Test func anAnonymousSocketResumesItsOwnEndedRunWithoutTheToken() async throws {
        let host = FakeHost()
        let core = FakeConnection.core(host)
        let anon = FakeConnection(host: host, subject: "")
        let session = anon.session(core)
        #expect(throws: Never.self) { session.didReceive(.text("{\"type\":\"input_response\",\"response\":\"x\"}")) }
        #expect(Self.object(try #require(anon.sent.last))["code"] as? String == "not_waiting_for_input")
        Self.start(session, "mine")
        let token = try #require(core.registry.liveRecord(id: "mine")?.key.resumeToken)
        let owner = RunOwner(issuer: "https://idp", subject: "")
        try await Self.record(core, "mine", owner: owner, token: token).emit(Self.event("a"))
        try Self.record(core, "mine", owner: owner, token: token).complete(.completed(stopReason: nil))
        host.pump()
        #expect(session.streamingRunIDs.isEmpty)
        session.didReceive(.text("{\"type\":\"resume\",\"run_id\":\"mine\",\"last_seq\":1}"))
        host.pump()
        #expect(Self.runFrames(anon, "mine").map { Self.object($0)["seq"] as? Int } == [1, 2, 2])
    }
}
