import Testing

@testable import AgentHostCore

@Suite("Message rate limiter")
struct MessageRateLimiterTests {
    static func admitted(_ limiter: inout MessageRateLimiter, atMilliseconds ms: UInt64, times: Int) -> Int {
        (0..<times).filter { _ in limiter.admit(now: ms * 1_000_000) }.count
    }

    @Test func allowsTheBurstThenTheAverageRate() throws {
        var limiter = try #require(MessageRateLimiter(rate: 10, burst: 3, now: 0, clockResolution: 4_000_000))
        let burst = Self.admitted(&limiter, atMilliseconds: 0, times: 5)
        let after100ms = Self.admitted(&limiter, atMilliseconds: 100, times: 5)
        let aSecondLater = Self.admitted(&limiter, atMilliseconds: 1100, times: 10)
        #expect(burst == 3)          // the burst
        #expect(after100ms == 1)     // 100 ms buys one message at 10/s
        #expect(aSecondLater == 3)   // a second later: a full bucket, no more
    }

    /// A clock that only moves in 4 ms ticks: a client keeping to 1000/s with a burst of 1 sends up to 4 messages
    /// within one tick, and must not be closed for it.
    @Test func theBucketHoldsAtLeastTwoTicksOfTheClock() throws {
        var limiter = try #require(MessageRateLimiter(rate: 1000, burst: 1, now: 0, clockResolution: 4_000_000))
        var admitted = 0
        for tick in 1...250 {  // one second in 4 ms ticks, 4 messages per tick: exactly the rate
            admitted += Self.admitted(&limiter, atMilliseconds: UInt64(tick * 4), times: 4)
        }
        #expect(admitted == 1000)
        #expect(Self.admitted(&limiter, atMilliseconds: 1000, times: 20) <= 8)  // but the rate still holds
    }

    @Test func aRateAboveOnePerNanosecondStillAdmits() throws {
        var limiter = try #require(MessageRateLimiter(rate: 2_000_000_000, burst: 1, now: 0, clockResolution: 4_000_000))
        #expect(Self.admitted(&limiter, atMilliseconds: 0, times: 100) == 100)
    }

    @Test func zeroMeansNoLimit() {
        #expect(MessageRateLimiter(rate: 0, burst: 10, now: 0) == nil)
    }
}
