/// How long to wait before replacing a worker that crashed after it was ready.
///
/// Why: a worker's crash used to be followed by a replacement at once, so whatever crashed workers in a loop (a
/// client's input, before tasks were checked; a team that crashes on every run) kept a core busy importing AutoGen
/// and the pool mostly restarting. The first crash after a quiet spell is replaced at once (a one-off crash should
/// not cost a run a wait); each crash within `quietSeconds` of the previous one doubles the wait, from 0.1 s up to
/// `maxSeconds`. Pure: the caller passes the time (the pool: the monotonic uptime).
struct CrashBackoff {
    var quietSeconds: Double = 60
    var maxSeconds: Double = 30
    /// Crashes so far within `quietSeconds` of each other, minus one.
    private(set) var streak = 0
    private var lastCrash: Double?

    /// Records a crash at `now` (seconds on a monotonic clock) and returns the delay before its replacement starts.
    mutating func delay(afterCrashAt now: Double) -> Double {
        if let last = self.lastCrash, now - last < self.quietSeconds {
            self.streak += 1
        } else {
            self.streak = 0
        }
        self.lastCrash = now
        return self.streak == 0 ? 0 : min(self.maxSeconds, 0.1 * Double(1 << min(self.streak - 1, 20)))
    }
}
