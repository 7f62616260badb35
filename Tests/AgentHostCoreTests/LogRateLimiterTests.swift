import AgentHostCore
import Synchronization
import Testing

@Suite("Log rate limiter")
struct LogRateLimiterTests {
    /// A clock the test moves by hand.
    final class TestClock: Sendable {
        private let start: ContinuousClock.Instant
        private let offset = Mutex(Duration.zero)
        init(_ start: ContinuousClock.Instant) { self.start = start }
        var now: ContinuousClock.Instant { self.start + self.offset.withLock { $0 } }
        func set(_ offset: Duration) { self.offset.withLock { $0 = offset } }
    }

    /// (logged as 0 or 1, suppressed), comparable in #expect.
    static func admit(_ limiter: LogRateLimiter) -> [Int] {
        let (log, suppressed) = limiter.admit()
        return [log ? 1 : 0, suppressed]
    }

    @Test func admitsOneLinePerIntervalAndCountsTheRest() {
        let start = ContinuousClock.now
        let clock = TestClock(start)
        let limiter = LogRateLimiter(interval: .seconds(10)) { clock.now }
        #expect(Self.admit(limiter) == [1, 0])
        #expect(Self.admit(limiter) == [0, 0])
        clock.set(.seconds(9))
        #expect(Self.admit(limiter) == [0, 0])
        clock.set(.seconds(10))
        #expect(Self.admit(limiter) == [1, 2])
        #expect(Self.admit(limiter) == [0, 0])
        clock.set(.seconds(30))
        #expect(Self.admit(limiter) == [1, 1])
    }
}
