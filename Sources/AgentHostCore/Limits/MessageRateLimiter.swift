/// A token bucket for one connection's inbound messages: `rate` per second on average, `burst` at once.
/// Pure and clock-free (the handler passes CoarseClock time), so it costs a few arithmetic operations per message.
struct MessageRateLimiter {
    private let nanosecondsPerToken: UInt64
    /// Tokens are counted in nanoseconds of credit: `burst * nanosecondsPerToken` is a full bucket, and never less
    /// than two ticks of the clock that refills it (see `init`).
    private let full: UInt64
    private var credit: UInt64
    private var last: UInt64

    /// nil when `rate` is 0 (no limit). `clockResolution`: the nanoseconds between the values the caller's clock
    /// can return. Within one tick the bucket gets no refill, so a bucket smaller than a tick's worth of messages
    /// would close a client that keeps to the rate but sends twice within a tick (at 1000/s with a burst of 1 and
    /// a 4 ms tick, anything faster than one message per tick).
    init?(rate: Int, burst: Int, now: UInt64, clockResolution: UInt64 = CoarseClock.resolutionNanoseconds) {
        guard rate > 0 else { return nil }
        // At least 1 ns: a rate above 10^9 per second would otherwise make every message free and none admitted.
        self.nanosecondsPerToken = max(1, 1_000_000_000 / UInt64(rate))
        self.full = max(UInt64(max(burst, 1)) * self.nanosecondsPerToken, 2 * clockResolution)
        self.credit = self.full
        self.last = now
    }

    /// Takes a token for one message; false when the connection is over its rate.
    mutating func admit(now: UInt64) -> Bool {
        let full = self.full
        if now > self.last {
            self.credit = min(full, self.credit &+ (now - self.last))
            self.last = now
        }
        guard self.credit >= self.nanosecondsPerToken else { return false }
        self.credit -= self.nanosecondsPerToken
        return true
    }
}
