import Testing

@testable import AgentHostCore

@Suite("Message rate limiter")
struct MessageRateLimiterTests {
    static func admitted(_ limiter: inout MessageRateLimiter, atMilliseconds ms: UInt64, times: Int) -> Int {
        (0..<times).filter { _ in limiter.admit(now: ms * 1_000_000) }.count
    }

    @Test func allowsTheBurstThenTheAverageRate() throws {
        var limiter = try #require(MessageRateLimiter(rate: 10, burst: 3, now: 0))
        let burst = Self.admitted(&limiter, atMilliseconds: 0, times: 5)
        let after100ms = Self.admitted(&limiter, atMilliseconds: 100, times: 5)
        let aSecondLater = Self.admitted(&limiter, atMilliseconds: 1100, times: 10)
        #expect(burst == 3)          // the burst
        #expect(after100ms == 1)     // 100 ms buys one message at 10/s
        #expect(aSecondLater == 3)   // a second later: a full bucket, no more
    }

    @Test func zeroMeansNoLimit() {
        #expect(MessageRateLimiter(rate: 0, burst: 10, now: 0) == nil)
    }
}
