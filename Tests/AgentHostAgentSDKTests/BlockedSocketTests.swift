import Synchronization
import Testing
@testable import AgentHostAgentSDK
@testable import AgentHostPluginSDK

/// Runs streaming to a socket that stops reading: what they hold stays within the replay budgets, and a socket
/// that drains at the wrong moment is not left blocked for good. Through the SDK's real `AgentSession` and
/// `Connection`, with a host function table the test answers (`FakeConnection`).
@Suite("blocked sockets")
struct BlockedSocketTests {
    static func start(_ registry: RunRegistry, _ options: AgentRouteOptions, on session: AgentSession,
                      owner: RunOwner, id: String) throws -> RunRecord
    {
        let key = RunKey(route: "/agents/test", owner: owner, resumeToken: nil, id: id)
        let record = RunRecord(key: key, addressGroup: "10.0.0.1", options: options, registry: registry)
        try registry.insert(record)
        _ = try record.attach(session, after: 0)
        return record
    }

    static func event(_ bytes: Int) -> AgentEvent {
        AutoGenEvent.textMessage(source: "assistant", content: String(repeating: "y", count: bytes))
    }

    /// Review item 1: a client that keeps its socket open but never reads. The host queues the first frame and
    /// says BACKPRESSURE; everything after stays in the run, unsent, where no drop may touch it while the socket
    /// is attached. Ten such runs of one identity held 2.3 MB against a 256 KiB budget (plus each run's newest
    /// frame, always kept); now a run over the budget
    /// whose socket holds what it cannot drop closes that socket (1008, as the host's outbound_hard_limit does)
    /// and goes on detached, within the budget.
    @Test func blockedSocketsCannotHoldMoreThanTheReplayBudget() async throws {
        let options = RunRegistryMemoryTests.options(perIdentity: 256 << 10)
        let registry = RunRegistry(options: options, sweeps: false)
        let alice = RunOwner(issuer: "https://idp", subject: "alice")
        var fakes: [FakeConnection] = []
        var records: [RunRecord] = []
        // A live run always keeps its newest frame (documented): the bound is the budget plus one per live run.
        func bound() -> Int { options.maxReplayBytesPerIdentity + records.count * 21_000 }
        for index in 0..<10 {
            let fake = FakeConnection()
            fake.onSend { _ in .backpressure }
            let session = fake.session(options: options)
            let record = try Self.start(registry, options, on: session, owner: alice, id: "run-\(index)")
            // 12 frames of 20 KB: under the run's unsent-bytes limit (half its 512 KiB buffer), so the producer
            // never waits, and under the budget alone; ten of them are not.
            for _ in 0..<12 { try await record.emit(Self.event(20_000)) }
            fakes.append(fake)
            records.append(record)
            #expect(registry.heldBytes <= bound())
        }
        #expect(records.reduce(0) { $0 + $1.heldBytes } <= bound())
        #expect(registry.heldBytes == records.reduce(0) { $0 + $1.heldBytes })
        // The first run fit: its socket stays. The others' sockets were closed as not reading.
        #expect(fakes[0].closed == nil)
        for fake in fakes.dropFirst() {
            #expect(fake.closed?.code == 1008)
            #expect(fake.closed?.reason == "client not reading")
            #expect(fake.sent.count == 1, "only the first frame reached the host")
        }
        // Cut off, a run goes on (detached: the normal dropping applies, and it can be resumed).
        #expect(records.allSatisfy { !$0.isFinished })
        try await records[9].emit(Self.event(20_000))
        #expect(registry.heldBytes <= bound())
    }

    /// Unsent frames are bounded in bytes too: the producer waits at half the run's buffer, so a slow reader
    /// makes it wait long before its socket would be cut.
    @Test func theProducerWaitsOnUnsentBytes() async throws {
        let options = RunRegistryMemoryTests.options()
        let registry = RunRegistry(options: options, sweeps: false)
        let fake = FakeConnection()
        fake.onSend { _ in .backpressure }
        let session = fake.session(options: options)
        let record = try Self.start(registry, options, on: session, owner: RunOwner(issuer: "", subject: "dan"),
                                    id: "slow")
        #expect(record.unsentByteLimit == options.bufferBytes / 2)
        // The host has the first frame (queued with BACKPRESSURE); 8 more of 30 KB wait in the run: 240 KB.
        for _ in 0..<9 { try await record.emit(Self.event(30_000)) }
        #expect(!record.isBacklogged)
        // The ninth unsent frame passes 256 KiB: that emit waits until the socket drains.
        let returned = Flag()
        let producer = Task {
            try await record.emit(Self.event(30_000))
            returned.set()
        }
        // Until that emit has appended (then it waits) or returned (the frame limit alone: it would not wait).
        while !record.isBacklogged, !returned.isSet { await Task.yield() }
        #expect(record.isBacklogged)
        #expect(!returned.isSet)
        #expect(fake.sent.count == 1)
        fake.onSend { _ in .ok }
        session.didBecomeWritable()
        record.flush()  // what the session's writable callback does for the runs it streams
        try await producer.value
        #expect(fake.sent.count == 10)
        #expect(!record.isBacklogged)
        #expect(fake.closed == nil, "a slow reader within the budget is not cut off")
    }

    /// Review item 2 (F7): the host may call didBecomeWritable between the moment `send` queues a frame with
    /// BACKPRESSURE and the moment `send` returns. That callback is the only one coming: if the run marked the
    /// socket blocked after `send` returned, its next frames would never be sent. Here `send` itself makes the
    /// callback before answering BACKPRESSURE, deterministically.
    @Test func aWritableCallbackDuringSendIsNotLost() async throws {
        let options = RunRegistryMemoryTests.options()
        let registry = RunRegistry(options: options, sweeps: false)
        let fake = FakeConnection()
        let session = fake.session(options: options)
        fake.onSend { _ in
            fake.onSend { _ in .ok }
            session.didBecomeWritable()  // the socket drained while send was returning
            return .backpressure
        }
        let record = try Self.start(registry, options, on: session, owner: RunOwner(issuer: "", subject: "erin"),
                                    id: "gate")
        try await record.emit(Self.event(10))
        #expect(fake.sent.count == 1)
        try await record.emit(Self.event(10))
        #expect(fake.sent.count == 2, "the frame after the BACKPRESSURE one is delivered")
    }

    /// Polls `flag` for up to ten seconds (a test of a wait that must end does not hang when it does not; a
    /// starved test process may take seconds to run the released task).
    static func settles(_ flag: Flag) async -> Bool {
        for _ in 0..<1000 where !flag.isSet { try? await Task.sleep(for: .milliseconds(10)) }
        return flag.isSet
    }

    /// Review 2, item 1: the route's budget, filled by other tenants' blocked runs, cut off whichever run added
    /// the next frame, here a client that reads but had two frames unsent. Only a run over its own holder's
    /// budget has its socket cut; past the route's, the run keeps its unsent frames (its producer's wait bounds
    /// them).
    @Test func aReadingClientIsNotCutOffForTheRoutesBudget() async throws {
        let options = RunRegistryMemoryTests.options(perIdentity: 1 << 20, total: 256 << 10)
        let registry = RunRegistry(options: options, sweeps: false)
        // Bob's socket does not read: 12 frames of 20 KB, under his budget and (just) under the route's.
        let bobFake = FakeConnection()
        bobFake.onSend { _ in .backpressure }
        let bob = try Self.start(registry, options, on: bobFake.session(options: options, subject: "bob"),
                                 owner: RunOwner(issuer: "https://idp", subject: "bob"), id: "bob")
        for _ in 0..<12 { try await bob.emit(Self.event(20_000)) }
        // Alice reads, but her socket is under backpressure for a moment: her frames after the first wait.
        let aliceFake = FakeConnection()
        aliceFake.onSend { _ in .backpressure }
        let aliceSession = aliceFake.session(options: options)
        let alice = try Self.start(registry, options, on: aliceSession,
                                   owner: RunOwner(issuer: "https://idp", subject: "alice"), id: "alice")
        for _ in 0..<4 { try await alice.emit(Self.event(20_000)) }
        #expect(aliceFake.closed == nil, "a reading client is not cut off for other tenants' frames")
        #expect(bobFake.closed == nil, "nor is bob: he is within his own budget")
        // The socket drains: she gets every frame after the ones dropped while they were sent.
        aliceFake.onSend { _ in .ok }
        aliceSession.didBecomeWritable()
        alice.flush()
        #expect(aliceFake.sent.count == 4)
        #expect(aliceFake.closed == nil)
        #expect(registry.heldBytes == bob.heldBytes + alice.heldBytes)
    }

    /// Review 2, item 2: cutting a socket off released nothing waiting for it to drain; the socket's didClose
    /// then found the run detached already, so a producer waiting in `emit` stayed stuck until the run ended.
    @Test func cuttingASocketOffReleasesItsWaitingProducer() async throws {
        var options = RunRegistryMemoryTests.options(perIdentity: 256 << 10)
        options.maxUnsentFrames = 3
        let registry = RunRegistry(options: options, sweeps: false)
        let fake = FakeConnection()
        fake.onSend { _ in .backpressure }
        let record = try Self.start(registry, options, on: fake.session(options: options),
                                    owner: RunOwner(issuer: "https://idp", subject: "alice"), id: "waiting")
        // One producer task waits: the host has the first frame, three more are unsent.
        let released = Flag()
        let waiting = Task {
            for _ in 0..<4 { try await record.emit(Self.event(10)) }
            released.set()
        }
        while !record.isBacklogged { await Task.yield() }
        for _ in 0..<20 { await Task.yield() }
        #expect(!released.isSet)
        // Another task of the run emits a frame past the identity's budget: the socket is cut off.
        try await record.emit(Self.event(300_000))
        #expect(fake.closed?.code == 1008)
        let settled = await Self.settles(released)
        #expect(settled, "the waiting producer goes on once the socket is cut off")
        record.finish(.cancelled, reason: "test over")  // releases it anyway if it was stuck
        _ = await waiting.result
    }

    /// Review 2, item 3: maxUnsentBytes (or maxUnsentFrames) 0 made every emit wait, also with nothing unsent,
    /// for a writable callback that never comes. The limits are at least 1.
    @Test func zeroUnsentLimitsDoNotBlockTheProducer() async throws {
        var options = RunRegistryMemoryTests.options()
        options.maxUnsentBytes = 0
        options.maxUnsentFrames = 0
        let registry = RunRegistry(options: options, sweeps: false)
        let fake = FakeConnection()
        let record = try Self.start(registry, options, on: fake.session(options: options),
                                    owner: RunOwner(issuer: "", subject: "frank"), id: "zero")
        #expect(record.unsentByteLimit == 1)
        let returned = Flag()
        let producer = Task {
            for _ in 0..<3 { try await record.emit(Self.event(10)) }
            returned.set()
        }
        let settled = await Self.settles(returned)
        #expect(settled, "a socket that takes every frame never makes the producer wait")
        record.finish(.cancelled, reason: "test over")
        _ = await producer.result
        #expect(fake.sent.count == 4)
    }
}

final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { self.value.load(ordering: .relaxed) }
    func set() { self.value.store(true, ordering: .relaxed) }
}
