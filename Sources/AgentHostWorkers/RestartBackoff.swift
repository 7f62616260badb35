/// When a dead worker's slot may start its next worker: exponential, capped, reset after a healthy run.
///
/// A worker that ran for `healthyPeriod` before it died is replaced after `initialDelay`; each further death
/// sooner than that doubles the delay up to `maxDelay`. A plugin that crashes on every request therefore costs a
/// respawn (a process start and a plugin load) every `maxDelay` at worst, not a loop that spins a core.
/// Pure: times come from the caller (`ContinuousClock` in the supervisor, plain numbers in tests).
public struct RestartBackoff: Sendable, Equatable {
    public struct Policy: Sendable, Equatable {
        public var initialDelay: Duration = .milliseconds(100)
        public var maxDelay: Duration = .seconds(30)
        public var healthyPeriod: Duration = .seconds(60)

        public init() {}
    }

    public let policy: Policy
    /// Deaths in a row, each sooner than `healthyPeriod` after its worker started.
    public private(set) var quickDeaths = 0

    public init(policy: Policy = Policy()) {
        self.policy = policy
    }

    /// A worker that ran for `uptime` died: returns how long to wait before starting the next one.
    public mutating func workerDied(after uptime: Duration) -> Duration {
        if uptime >= self.policy.healthyPeriod { self.quickDeaths = 0 }
        let doublings = min(self.quickDeaths, 30)
        self.quickDeaths += 1
        let delay = self.policy.initialDelay * (1 << doublings)
        return min(delay, self.policy.maxDelay)
    }
}
