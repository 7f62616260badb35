/// A token bucket for one connection's inbound messages: `rate` per second on average, `burst` at once.
/// Pure and clock-free (the handler passes CoarseClock time), so it costs a few arithmetic operations per message.
struct MessageRateLimiter {
    private let nanosecondsPerToken: UInt64
    private let burst: UInt64
    /// Tokens are counted in nanoseconds of credit: `burst * nanosecondsPerToken` is a full bucket.
    private var credit: UInt64
    private var last: UInt64

    /// nil when `rate` is 0 (no limit).
    init?(rate: Int, burst: Int, now: UInt64) {
        guard rate > 0 else { return nil }
        self.nanosecondsPerToken = 1_000_000_000 / UInt64(rate)
        self.burst = UInt64(max(burst, 1))
        self.credit = self.burst * self.nanosecondsPerToken
        self.last = now
    }

    /// Takes a token for one message; false when the connection is over its rate.
    mutating func admit(now: UInt64) -> Bool {
        let full = self.burst * self.nanosecondsPerToken
        if now > self.last {
            self.credit = min(full, self.credit &+ (now - self.last))
            self.last = now
        }
        guard self.credit >= self.nanosecondsPerToken else { return false }
        self.credit -= self.nanosecondsPerToken
        return true
    }
}
