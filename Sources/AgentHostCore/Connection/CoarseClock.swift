import Glibc

/// A cheap monotonic clock for the per-message path: CLOCK_MONOTONIC_COARSE is read from the vDSO without a syscall
/// and costs a few nanoseconds, at the price of a resolution of one scheduler tick (1-4 ms). That is plenty for
/// what it serves: idle and ping timeouts in seconds, and the slow-callback threshold in tens of milliseconds.
public enum CoarseClock {
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }

    /// The step between two readings (one scheduler tick), as the kernel reports it; 4 ms if it does not.
    public static let resolutionNanoseconds: UInt64 = {
        var spec = timespec()
        guard clock_getres(CLOCK_MONOTONIC_COARSE, &spec) == 0 else { return 4_000_000 }
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }()
}
