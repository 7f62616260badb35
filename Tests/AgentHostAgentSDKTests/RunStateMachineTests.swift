import Testing
@testable import AgentHostAgentSDK

/// The run state machine alone: time is a number the test passes in.
@Suite("run state machine")
struct RunStateMachineTests {
    static let limits = RunStateMachine.Limits(runTimeoutMilliseconds: 10_000, inputTimeoutMilliseconds: 2000,
                                               resumeGraceMilliseconds: 1000)

    static func watched(at start: Double = 100) -> RunStateMachine {
        var machine = RunStateMachine(startedAt: start, limits: Self.limits)
        machine.watcherAttached()
        return machine
    }

    @Test func aRunIsLiveThenWaitsForInputThenIsLiveAgain() {
        var machine = Self.watched()
        #expect(machine.phase == .live)
        let result1 = machine.requestInput("q1", now: 101)
        #expect(result1)
        #expect(machine.phase == .waitingForInput)
        let result2 = machine.answer(requestID: "other")
        #expect(result2 == .notWaiting)
        let result3 = machine.answer(requestID: nil)
        #expect(result3 == .deliver(requestID: "q1"), "no id: the oldest request")
        #expect(machine.phase == .live)
        let result4 = machine.answer(requestID: nil)
        #expect(result4 == .notWaiting)
    }

    @Test func theRunTimeoutEndsTheRunOnce() {
        var machine = Self.watched()
        let result5 = machine.tick(now: 109.9)
        #expect(result5 == nil)
        let result6 = machine.tick(now: 110)
        #expect(result6 == .stopped(.timeout, reason: "the run took longer than 10000 ms"))
        let result7 = machine.tick(now: 200)
        #expect(result7 == nil, "ended once")
        let result8 = machine.end(.complete)
        #expect(result8 == nil, "one terminal frame")
        let result9 = machine.requestInput("late", now: 200)
        #expect(!result9)
    }

    @Test func anUnansweredInputRequestTimesOut() {
        var machine = Self.watched()
        _ = machine.requestInput("q1", now: 101)
        let result10 = machine.tick(now: 102.9)
        #expect(result10 == nil)
        let result11 = machine.tick(now: 103)
        #expect(result11 == .stopped(.timeout, reason: "no input_response within 2000 ms"))
        #expect(machine.phase == .ended(.stopped(.timeout, reason: "no input_response within 2000 ms")))
    }

    @Test func anAnsweredOrWithdrawnRequestHasNoDeadline() {
        var machine = Self.watched()
        _ = machine.requestInput("q1", now: 101)
        _ = machine.requestInput("q2", now: 101)
        let result12 = machine.answer(requestID: "q2")
        #expect(result12 == .deliver(requestID: "q2"))
        machine.withdraw("q1")
        let result13 = machine.tick(now: 105)
        #expect(result13 == nil)
    }

    @Test func aRunNobodyWatchesIsCancelledAfterTheGrace() {
        var machine = Self.watched()
        machine.watcherAttached()  // a second socket (a remote resumer)
        machine.watcherDetached(now: 101)
        let result14 = machine.tick(now: 103)
        #expect(result14 == nil, "one socket still watches")
        machine.watcherDetached(now: 104)
        let result15 = machine.tick(now: 104.9)
        #expect(result15 == nil)
        let result16 = machine.tick(now: 105)
        #expect(result16 == .stopped(.cancelled,
                                                   reason: "the client went away and did not resume within 1000 ms"))
    }

    @Test func aResumeWithinTheGraceKeepsTheRun() {
        var machine = Self.watched()
        machine.watcherDetached(now: 101)
        machine.watcherAttached()
        let result17 = machine.tick(now: 109)
        #expect(result17 == nil)
    }

    @Test func aRunNeverWatchedCountsAsUnwatchedFromItsStart() {
        var machine = RunStateMachine(startedAt: 100, limits: Self.limits)
        let result18 = machine.tick(now: 101)
        #expect(result18 == .stopped(.cancelled,
                                                   reason: "the client went away and did not resume within 1000 ms"))
    }

    @Test func stopEndsTheRunAndDropsItsInputRequests() {
        var machine = Self.watched()
        _ = machine.requestInput("q1", now: 101)
        let result19 = machine.end(.stopped(.cancelled, reason: "Cancelled by user"))
        #expect(result19 != nil)
        #expect(machine.awaiting.isEmpty)
        let result20 = machine.answer(requestID: "q1")
        #expect(result20 == .notWaiting)
        let result21 = machine.end(.complete)
        #expect(result21 == nil)
    }

    @Test func noRunTimeoutMeansNone() {
        var machine = RunStateMachine(startedAt: 0, limits: .init(runTimeoutMilliseconds: 0, inputTimeoutMilliseconds: 1,
                                                                  resumeGraceMilliseconds: 1))
        machine.watcherAttached()
        let result22 = machine.tick(now: 1e9)
        #expect(result22 == nil)
    }

    static let grace = RunStateMachine.RunEnd.stopped(.cancelled,
                                                      reason: "the client went away and did not resume within 1000 ms")

    /// Watched from 100, with no run timeout: the leases below run for tens of seconds.
    static func leased() -> RunStateMachine {
        let limits = RunStateMachine.Limits(runTimeoutMilliseconds: 0, inputTimeoutMilliseconds: 2000,
                                            resumeGraceMilliseconds: 1000)
        var machine = RunStateMachine(startedAt: 100, limits: limits)
        machine.watcherAttached()
        return machine
    }

    @Test func aRemoteWatcherCountsOnlyUntilItsLeaseRunsOut() {
        // Started at 100, its local socket gone at 101; a remote socket watches with a lease to 132.
        var machine = Self.leased()
        machine.watcherDetached(now: 101)
        machine.remoteWatching("w1", until: 132)
        let lease1 = machine.tick(now: 131.9)
        #expect(lease1 == nil, "the lease holds the run")
        let lease2 = machine.tick(now: 132.5)
        #expect(lease2 == nil, "the grace (1 s) runs from the lease's deadline")
        #expect(machine.remoteLeases.isEmpty, "the lease expired")
        let lease3 = machine.tick(now: 133)
        #expect(lease3 == Self.grace, "no renewal: the remote side died; the run does not live on")
    }

    @Test func aRenewedLeaseKeepsTheRunAndNotWatchingStartsTheGraceAtOnce() {
        var machine = Self.leased()
        machine.watcherDetached(now: 101)
        machine.remoteWatching("w1", until: 131)
        machine.remoteWatching("w1", until: 141)  // renewed at 111
        machine.remoteWatching("w2", until: 135)
        let lease4 = machine.tick(now: 140)
        #expect(lease4 == nil, "w1's renewed lease holds it after w2's ran out")
        machine.remoteNotWatching("w1", now: 140)
        let lease5 = machine.tick(now: 140.9)
        #expect(lease5 == nil)
        let lease6 = machine.tick(now: 141)
        #expect(lease6 == Self.grace)
    }

    @Test func aLeaseThatRanOutWhileALocalSocketWatchedDoesNotShortenTheGrace() {
        var machine = Self.leased()
        machine.remoteWatching("w1", until: 110)
        machine.watcherDetached(now: 120)
        let lease7 = machine.tick(now: 120.9)
        #expect(lease7 == nil, "unwatched since 120, not since the lease's 110")
        let lease8 = machine.tick(now: 121)
        #expect(lease8 == Self.grace)
    }
}
