import Synchronization

/// Lets a log line that a client or a plugin can trigger at will through at most once per interval, and counts
/// the ones held back so the next line can say how many there were: the problem stays visible without a
/// misbehaving peer filling the log (or the disk) with the same line.
public final class LogRateLimiter: Sendable {
    private struct State {
        var lastLogged: ContinuousClock.Instant?
        var suppressed = 0
    }

    private let interval: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex(State())

    /// `now` is the clock (tests inject their own).
    public init(interval: Duration, now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.interval = interval
        self.now = now
    }

    /// Whether to log this occurrence; if so, how many were held back since the last line logged.
    public func admit() -> (log: Bool, suppressed: Int) {
        let now = self.now()
        return self.state.withLock { state in
            if let last = state.lastLogged, now - last < self.interval {
                state.suppressed += 1
                return (false, 0)
            }
            let suppressed = state.suppressed
            state.lastLogged = now
            state.suppressed = 0
            return (true, suppressed)
        }
    }
}
