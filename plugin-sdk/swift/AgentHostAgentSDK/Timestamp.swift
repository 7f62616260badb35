#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Wall-clock times as the protocol writes them: ISO 8601 in UTC with microseconds. Frames use `+00:00` like
/// AutoGen Studio's `timestamp`; event payloads use `Z` like AutoGen's `.dump()`. Hand-written because Foundation's
/// ISO 8601 formatter has no microseconds, and this runs for every frame.
enum Timestamp {
    static func now(zulu: Bool = false) -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let micros = Int(spec.tv_nsec) / 1000
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(micros, 6))"
            + (zulu ? "Z" : "+00:00")
    }

    /// Seconds on a monotonic clock, for durations.
    static func monotonicSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
