import AgentHostWorkers
import Testing

@Suite("Restart backoff")
struct RestartBackoffTests {
    @Test func doublesForQuickDeathsUpToTheCap() {
        var backoff = RestartBackoff()
        let delays = (0..<12).map { _ in backoff.workerDied(after: .milliseconds(50)) }
        #expect(Array(delays.prefix(5)) == [.milliseconds(100), .milliseconds(200), .milliseconds(400),
                                            .milliseconds(800), .milliseconds(1600)])
        #expect(delays.last == .seconds(30))
        #expect(delays.allSatisfy { $0 <= .seconds(30) })
    }

    @Test func aHealthyRunResetsTheDelay() {
        var backoff = RestartBackoff()
        for _ in 0..<6 { _ = backoff.workerDied(after: .seconds(1)) }
        #expect(backoff.workerDied(after: .seconds(1)) == .milliseconds(6400))
        #expect(backoff.workerDied(after: .seconds(61)) == .milliseconds(100))
        #expect(backoff.workerDied(after: .seconds(2)) == .milliseconds(200))
    }

    @Test func aCrashLoopCostsAtMostOneStartPerCap() {
        // A worker that dies 10 ms after every start, for an hour: how many starts?
        var backoff = RestartBackoff()
        var elapsed = Duration.zero
        var starts = 0
        while elapsed < .seconds(3600) {
            starts += 1
            elapsed += .milliseconds(10) + backoff.workerDied(after: .milliseconds(10))
        }
        #expect(starts < 3600 / 30 + 20)
    }
}

@Suite("Worker exit")
struct WorkerExitTests {
    @Test func describesSignalsByNameAndExitsByStatus() {
        #expect(WorkerExit(waitStatus: 11).description == "killed by SIGSEGV (signal 11)")
        #expect(WorkerExit(waitStatus: 9).description == "killed by SIGKILL (signal 9)")
        #expect(WorkerExit(waitStatus: 3 << 8).description == "exited with status 3")
        #expect(WorkerExit(waitStatus: 0).isCleanExit)
        #expect(!WorkerExit(waitStatus: 6).isCleanExit)
    }
}
