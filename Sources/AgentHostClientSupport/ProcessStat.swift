import Foundation
import Glibc

/// A process's (or one of its threads') name and CPU time, from Linux's `/proc/<pid>/stat` or
/// `/proc/<pid>/task/<tid>/stat`: what the benchmarks read of the servers they run and of themselves.
public struct ProcessStat: Sendable {
    public var name: String
    /// User plus system CPU seconds.
    public var cpuSeconds: Double

    /// Nil when the file is gone (the process or thread ended) or not in the expected shape.
    public init?(path: String) {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8),
            let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
        else { return nil }
        // The name may hold spaces and parentheses: fields are counted from its last ')'. After it come the state
        // ([0]) and, as fields 14 and 15 of the file, utime and stime ([11] and [12]), in clock ticks.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        self.name = String(stat[stat.index(after: open) ..< close])
        self.cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Each thread of process `pid` ("self" for this one), by thread id.
    public static func threads(of pid: String) -> [String: ProcessStat] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var threads: [String: ProcessStat] = [:]
        for tid in tasks {
            threads[tid] = ProcessStat(path: "/proc/\(pid)/task/\(tid)/stat")
        }
        return threads
    }
}
