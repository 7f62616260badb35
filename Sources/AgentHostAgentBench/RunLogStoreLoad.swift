import AgentHostClientSupport
import AgentHostRunLog
import Foundation
import Glibc
import Logging

/// The run log's cost per run without a server around it: runs shaped like the native agent's (create, 23 JSON
/// frames of ~470 bytes, end, release) appended as fast as the service takes them, then stored. The SQLite store is measured
/// against the memory backend in the same run (ABBA), as CPU microseconds per run of the whole process and of the
/// write-behind thread alone: the figure that the end-to-end runs/s comparison hides in its noise.
struct RunLogStoreLoad {
    var runs: Int
    var framesPerRun: Int
    var frameBytes: Int
    var rounds: Int
    var directory: String

    struct Figures {
        var runs = 0
        var wallSeconds = 0.0
        var cpuSeconds = 0.0
        var writeBehindSeconds = 0.0
    }

    func run() async throws {
        say("run log store: \(self.runs) runs of \(self.framesPerRun) frames x \(self.frameBytes) B per round, "
            + "one anonymous owner (retention at work), \(self.rounds) rounds per backend in ABBA order")
        say("backend   runs/s      CPU us/run   write-behind us/run")
        var totals: [String: Figures] = [:]
        let order = (0 ..< self.rounds).flatMap { $0 % 2 == 0 ? ["memory", "sqlite"] : ["sqlite", "memory"] }
        for (index, backend) in order.enumerated() {
            let figures = try await self.round(backend: backend, path: "\(self.directory)/store-\(index).sqlite")
            say(Self.row(backend, figures))
            var total = totals[backend] ?? Figures()
            total.runs += figures.runs
            total.wallSeconds += figures.wallSeconds
            total.cpuSeconds += figures.cpuSeconds
            total.writeBehindSeconds += figures.writeBehindSeconds
            totals[backend] = total
        }
        guard let memory = totals["memory"], let sqlite = totals["sqlite"] else { return }
        say("all rounds:")
        say(Self.row("memory", memory))
        say(Self.row("sqlite", sqlite))
        let extra = (sqlite.cpuSeconds / Double(sqlite.runs) - memory.cpuSeconds / Double(memory.runs)) * 1e6
        say(String(format: "SQLite costs %.1f us of CPU per run more than memory (%.0f%% of memory's)", extra,
                   100 * (sqlite.cpuSeconds / Double(sqlite.runs)) / (memory.cpuSeconds / Double(memory.runs))))
    }

    private static func row(_ name: String, _ figures: Figures) -> String {
        let runs = Double(figures.runs)
        return String(format: "%-8@ %8.0f %14.1f %21.1f", name as NSString, runs / figures.wallSeconds,
                      figures.cpuSeconds / runs * 1e6, figures.writeBehindSeconds / runs * 1e6)
    }

    private func round(backend: String, path: String) async throws -> Figures {
        let store: any RunLogBackend = backend == "sqlite" ? SQLiteRunLogBackend(path: path) : MemoryRunLogBackend()
        let service = RunLogService(backend: store, logger: Logger(label: "runlog-bench"))
        await service.start()
        // Made before measuring (a frame takes longer to make than to store): runs cycle through them.
        var generator = SystemRandomNumberGenerator()
        let samples = (0 ..< 64).map { _ in
            let runID = UUID().uuidString.lowercased()
            return (1 ... self.framesPerRun).map { Self.agentFrame(runID: runID, seq: $0, bytes: self.frameBytes, &generator) }
        }
        let threadsBefore = ProcessStat.threads(of: "self")
        let cpuBefore = Self.processCPU()
        let start = DispatchTime.now().uptimeNanoseconds
        // Two tasks, as the host's two event loops would append. As fast as they go: a write-behind batch holds
        // hundreds of runs, where the host at ~1,000 runs/s stores ~20 per batch, so this is the store's cost per
        // run at its most efficient (a batch's commit spread over many runs), not the host's.
        let failures = await withTaskGroup(of: Int.self) { group in
            for worker in 0 ..< 2 {
                group.addTask {
                    var generator = SystemRandomNumberGenerator()
                    var failed = 0
                    for run in stride(from: worker, to: self.runs, by: 2) {
                        let key = Array("run-\(run)".utf8)
                        let secret = (0 ..< 4).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }
                        let created = key.withUnsafeBytes { keyBytes in
                            secret.withUnsafeBytes { secretBytes in
                                service.create(instance: 1, route: "/agents/native", key: keyBytes, owner: .anonymous,
                                               secret: secretBytes, signalContext: 0, signalSink: { _ in })
                            }
                        }
                        guard case .success(let handle) = created else {
                            failed += 1
                            continue
                        }
                        for frame in samples[run % samples.count] {
                            _ = frame.withUnsafeBytes { service.append(handle: handle, bytes: $0) }
                        }
                        _ = service.end(handle: handle, status: "complete")
                        _ = service.release(handle: handle)
                        // Yield now and then, as runs spread over time would.
                        if run % 64 == worker { await Task.yield() }
                    }
                    return failed
                }
            }
            return await group.reduce(0, +)
        }
        await service.flush()
        await service.flush()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpu = Self.processCPU() - cpuBefore
        let threadsAfter = ProcessStat.threads(of: "self")
        await service.shutdown()
        // The write-behind thread is the one that appeared (or grew most) under its name.
        let writeBehind = threadsAfter.filter { $0.value.name.hasPrefix("ah-runlog-write") }
            .map { $0.value.cpuSeconds - (threadsBefore[$0.key]?.cpuSeconds ?? 0) }.reduce(0, +)
        return Figures(runs: self.runs - failures, wallSeconds: wall, cpuSeconds: cpu, writeBehindSeconds: writeBehind)
    }

    private static let words = ["the", "socket", "stays", "open", "while", "frames", "flow", "both", "ways", "a",
                                "poem", "about", "WebSockets", "streams", "tokens", "to", "every", "client", "as", "they"]

    /// A frame shaped like the native agent's: JSON with the run id, a message id and a timestamp in every frame,
    /// its content words padded to about `bytes`. The store compresses what it keeps, and repeated bytes would
    /// flatter it (a chunk of one byte repeated shrinks a hundredfold, agent frames about fourfold).
    static func agentFrame(runID: String, seq: Int, bytes: Int, _ generator: inout SystemRandomNumberGenerator) -> [UInt8] {
        var content = ""
        let envelope = 306  // the JSON around the content, as below
        while content.utf8.count < bytes - envelope {
            content += Self.words[Int.random(in: 0 ..< Self.words.count, using: &generator)] + " "
        }
        let milliseconds = Int.random(in: 0 ..< 1_000_000, using: &generator)
        return Array("""
            {"type":"message","data":{"id":"\(UUID().uuidString.lowercased())","source":"assistant","models_usage":null,\
            "metadata":{},"created_at":"2026-12-02T16:01:23.\(milliseconds)Z","content":"\(content)",\
            "type":"TextMessage"},"v":1,"run_id":"\(runID)","seq":\(seq),"ts":"2026-12-02T16:01:23.\(milliseconds)+00:00"}
            """.utf8)
    }

    private static func processCPU() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
