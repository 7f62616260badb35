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
}
