import Synchronization
import Testing
@testable import AgentHostAgentSDK

/// F5: what runs hold is bounded per identity and per route, and a forgotten run is freed at once. Counted in
/// bytes the registry holds (not RSS, not timed): the registry's own account, checked against the runs' buffers.
@Suite("run registry memory")
struct RunRegistryMemoryTests {
    /// A clock the test moves; the registry's sweep is not started, the test calls it.
    final class TestClock: Sendable {
        private let seconds = Mutex(1000.0)
        var now: Double { self.seconds.withLock { $0 } }
        func advance(_ by: Double) { self.seconds.withLock { $0 += by } }
    }

    static func options(perIdentity: Int = 1 << 20, total: Int = 4 << 20) -> AgentRouteOptions {
        var options = AgentRouteOptions()
        options.bufferBytes = 512 << 10
        options.maxReplayBytesPerIdentity = perIdentity
        options.maxReplayBytes = total
        options.maxRunsPerIdentity = 1000
        options.maxRunsPerAddress = 1000
        return options
    }

    /// Starts and ends one run whose task (`taskBytes` of text) is echoed back as AutoGen would: the task, then
    /// a reply quoting it. Returns the ended record.
    static func runToTheEnd(_ registry: RunRegistry, _ options: AgentRouteOptions, owner: RunOwner, id: String,
                            taskBytes: Int) async throws -> RunRecord
    {
        let key = RunKey(route: "/agents/test", owner: owner, resumeToken: ResumeToken.make(), id: id)
        let record = RunRecord(key: key, addressGroup: "10.0.0.1", options: options, registry: registry)
        try registry.insert(record)
        let task = String(repeating: "x", count: taskBytes)
        try await record.emit(AutoGenEvent.textMessage(source: "user", content: task))
        try await record.emit(AutoGenEvent.textMessage(source: "assistant", content: "You said: " + task))
        record.complete(.completed(stopReason: nil))
        return record
    }

    @Test func replayBytesStayWithinTheIdentityAndRouteBudgets() async throws {
        let options = Self.options()
        let registry = RunRegistry(options: options, sweeps: false)
        let alice = RunOwner(issuer: "https://idp", subject: "alice")
        var records: [RunRecord] = []
        // 120 runs of a 100 KB task: about 50 MB of frames without budgets (each run holds the task 4 times:
        // message, reply, and the result's TaskResult quoting both).
        for index in 0..<120 {
            records.append(try await Self.runToTheEnd(registry, options, owner: alice, id: "run-\(index)", taskBytes: 100_000))
            #expect(registry.heldBytes <= options.maxReplayBytesPerIdentity)
        }
        // The registry's account is what the runs really hold.
        #expect(registry.heldBytes == records.reduce(0) { $0 + $1.heldBytes })
        #expect(registry.heldBytes > options.maxReplayBytesPerIdentity / 2, "the budget is used, not emptied")
        // The newest run is still resumable; the oldest were forgotten to make room.
        #expect(registry.lookup(records.last!.key) != nil)
        #expect(registry.lookup(records.first!.key) == nil)

        // Ten more identities: the route's total budget holds too.
        for user in 0..<10 {
            let owner = RunOwner(issuer: "https://idp", subject: "user-\(user)")
            for index in 0..<20 {
                records.append(try await Self.runToTheEnd(registry, options, owner: owner, id: "run-\(index)",
                                                         taskBytes: 100_000))
                #expect(registry.heldBytes <= options.maxReplayBytes)
            }
        }
        #expect(registry.heldBytes == records.reduce(0) { $0 + $1.heldBytes })
    }

    @Test func aLiveRunOverItsBudgetKeepsOnlyItsNewestFrames() async throws {
        let options = Self.options(perIdentity: 256 << 10)
        let registry = RunRegistry(options: options, sweeps: false)
        let key = RunKey(route: "/agents/test", owner: RunOwner(issuer: "", subject: "bob"), resumeToken: nil, id: "big")
        let record = RunRecord(key: key, addressGroup: "10.0.0.1", options: options, registry: registry)
        try registry.insert(record)
        for _ in 0..<50 {
            try await record.emit(AutoGenEvent.textMessage(source: "assistant", content: String(repeating: "y", count: 20_000)))
        }
        #expect(registry.heldBytes <= options.maxReplayBytesPerIdentity)
        // A live run reports its bytes in batches: at most one batch more than the registry knows of.
        #expect(record.heldBytes <= options.maxReplayBytesPerIdentity + RunRecord.chargeBatchBytes)
        #expect(!record.isFinished, "a live run over its budget keeps going")
        // Ended, it has told the registry everything. (Its result frame alone, quoting all 50 messages, is over the
        // budget: the newest frame is always kept.)
        record.complete(.completed(stopReason: nil))
        #expect(registry.heldBytes == record.heldBytes)
    }

    @Test func forgottenRunsAreFreedAtOnce() async throws {
        let clock = TestClock()
        var options = Self.options()
        options.resumeGraceMilliseconds = 1000
        let registry = RunRegistry(options: options, now: { clock.now }, sweeps: false)
        let owner = RunOwner(issuer: "", subject: "carol")
        weak var first: RunRecord?
        // Fewer than the old code's compaction threshold (1,024): it kept every one of these referenced.
        for index in 0..<300 {
            let record = try await Self.runToTheEnd(registry, options, owner: owner, id: "r\(index)", taskBytes: 100)
            if index == 0 { first = record }
        }
        #expect(registry.referencedRuns == 300)
        clock.advance(2)
        registry.sweep(now: clock.now)
        #expect(registry.referencedRuns == 0)
        #expect(registry.heldBytes == 0)
        #expect(first == nil, "nothing references a forgotten run")
    }
}

extension RunRegistryMemoryTests {
    /// Review item 3: a start with the id of its owner's ended run replaces that run. The replaced run used to stay
    /// listed as ended (referenced until its grace period ended, and counted as its holder's retained run).
    @Test func aReplacedEndedRunIsNoLongerReferenced() async throws {
        let clock = TestClock()
        let options = Self.options()
        let registry = RunRegistry(options: options, now: { clock.now }, sweeps: false)
        let owner = RunOwner(issuer: "", subject: "frank")
        weak var replaced: RunRecord?
        do {
            replaced = try await Self.runToTheEnd(registry, options, owner: owner, id: "same", taskBytes: 1000)
        }
        #expect(replaced != nil)
        let key = RunKey(route: "/agents/test", owner: owner, resumeToken: nil, id: "same")
        let record = RunRecord(key: key, addressGroup: "10.0.0.1", options: options, registry: registry)
        try registry.insert(record)
        #expect(registry.referencedRuns == 1)
        #expect(replaced == nil, "nothing references the replaced run")
        #expect(registry.heldBytes == 0)
        record.complete(.completed(stopReason: nil))
        clock.advance(Double(options.resumeGraceMilliseconds) / 1000)
        registry.sweep(now: clock.now)
        #expect(registry.referencedRuns == 0)
    }
}
