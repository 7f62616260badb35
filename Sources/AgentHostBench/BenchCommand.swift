import AgentHostClientSupport
import ArgumentParser
import Foundation
import Glibc
import NIOCore
import NIOPosix

/// Measures echo round trips through the C echo plugin against a bare NIO echo handler in the same server process
/// and run, then the server's resident memory per idle WebSocket (ws and wss, plugin route and baseline).
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agenthost-bench",
        abstract: "Echo throughput and latency, plugin path vs bare NIO baseline; memory per idle connection.")

    @Option(help: "Directory holding the built `agenthost` and `libagenthost-echo.so` (default: beside this binary).")
    var buildDirectory: String?

    @Option(help: "Concurrent connections for the echo load.") var connections = 64
    @Option(help: "Messages in flight per connection.") var inFlight = 16
    @Option(help: "Payload sizes in bytes, comma-separated.") var sizes = "32,4096"
    @Option(help: "Seconds measured per round (after a 1 s warm-up).") var seconds = 3.0
    @Option(help: "Rounds per path and size, in ABBA order to cancel drift.") var rounds = 2
    @Option(help: "Server event-loop threads (1 leaves the other core to this client).") var eventLoops = 1
    @Option(help: "Idle connections for the memory figure (0 skips it).") var idleConnections = 10_000
    @Option(help: "Load an already running server on this port instead of starting one (for profiling; run it with --baseline-echo-route /_baseline/echo; no CPU or memory figures).")
    var port: Int?
    @Option(help: "Only these paths: plugin, baseline, or both.") var paths = "baseline,plugin"
    @Option(help: "A config file for the server under test (passed as --config).") var serverConfig: String?
    @Option(help: "Seconds of echo load with hot reloads every --reload-interval-ms (0 skips the reload figures).")
    var reloadSeconds = 3.0
    @Option(help: "Milliseconds between reloads in the reload figures.") var reloadIntervalMs = 100
    @Flag(help: "Compare echo through the plugin on `--workers 2` (one event loop each) with one process on two event loops, in the same run, side by side; skips the other figures.")
    var compareWorkers = false
    @Option(help: "Compare echo on /echo (ws and wss, each size, depths 1 and --in-flight) with the build in this directory (another commit's release build: agenthost and libagenthost-echo.so), in the same run, ABBA; skips the other figures.")
    var compareBuild: String?

    func run() async throws {
        let directory = self.buildDirectory
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        raiseOpenFileLimit()
        if self.compareWorkers {
            try await WorkersComparison(directory: directory, connections: self.connections, inFlight: self.inFlight,
                                        sizes: self.sizes.split(separator: ",").compactMap { Int($0) },
                                        seconds: self.seconds, rounds: self.rounds, config: self.serverConfig).run()
            return
        }
        if let other = self.compareBuild {
            try await BuildComparison(
                builds: [("other", other), ("this", directory)], connections: self.connections,
                depths: Array(Set([1, self.inFlight])).sorted(), sizes: self.sizes.split(separator: ",").compactMap { Int($0) },
                seconds: self.seconds, rounds: self.rounds, config: self.serverConfig).run()
            return
        }
        let server = self.port == nil
            ? try ServerUnderTest(binary: "\(directory)/agenthost", echoPlugin: "\(directory)/libagenthost-echo.so",
                                  eventLoops: self.eventLoops, config: self.serverConfig)
            : nil
        defer { server?.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = EchoLoadClient(group: group, port: server?.port ?? self.port!)
        let selectedPaths = self.paths.split(separator: ",").map(String.init)
        let sizes = self.sizes.split(separator: ",").compactMap { Int($0) }

        print("agenthost-bench: \(self.connections) connections x \(self.inFlight) in flight, server on "
              + "\(self.eventLoops) event loop(s), \(self.rounds) x \(self.seconds) s per path and size")
        print("path      size     msgs/s   p50 us   p99 us  server us/msg")
        var ratios: [(Int, Double, Double)] = []
        for size in sizes {
            var totals: [String: (messages: Int, seconds: Double, cpu: Double, latencies: [UInt64])] = [:]
            let order = (0..<self.rounds).flatMap { $0 % 2 == 0 ? ["baseline", "plugin"] : ["plugin", "baseline"] }
                .filter { selectedPaths.contains($0) }
            for path in order {
                let route = path == "plugin" ? "/echo" : ServerUnderTest.baselineRoute
                let cpuBefore = server?.cpuSeconds ?? 0
                let result = try await client.run(path: route, connections: self.connections, inFlight: self.inFlight,
                                                  payloadSize: size, warmup: .seconds(1),
                                                  duration: .milliseconds(Int64(self.seconds * 1000)))
                let cpu = (server?.cpuSeconds ?? 0) - cpuBefore
                var total = totals[path] ?? (0, 0, 0, [])
                total.messages += result.messages
                total.seconds += result.seconds
                total.cpu += cpu
                total.latencies += result.latenciesNanoseconds
                totals[path] = total
            }
            var rates: [String: Double] = [:]
            var cpuPerMessage: [String: Double] = [:]
            for path in ["baseline", "plugin"] {
                guard var total = totals[path] else { continue }
                total.latencies.sort()
                let rate = Double(total.messages) / total.seconds
                rates[path] = rate
                // CPU is sampled over warm-up and measurement; scale it to the measured share of the run.
                let measuredShare = self.seconds / (self.seconds + 1)
                cpuPerMessage[path] = total.cpu * measuredShare / Double(max(total.messages, 1)) * 1e6
                print(String(format: "%-9@ %5d %10.0f %8.1f %8.1f %10.2f", path as NSString, size, rate,
                             percentileMicroseconds(total.latencies, 0.50), percentileMicroseconds(total.latencies, 0.99),
                             cpuPerMessage[path]!))
            }
            if let plugin = rates["plugin"], let baseline = rates["baseline"], baseline > 0 {
                ratios.append((size, plugin / baseline, (cpuPerMessage["plugin"] ?? 0) / (cpuPerMessage["baseline"] ?? 1)))
            }
        }
        for (size, ratio, cpuRatio) in ratios {
            let verdict = ratio >= 0.9 ? "meets" : "MISSES"
            print(String(format: "plugin/baseline at %d B: throughput %.1f%% (%@ the 90%% target), server CPU per message %.2fx",
                         size, ratio * 100, verdict as NSString, cpuRatio))
        }

        if self.reloadSeconds > 0, let server {
            let figures = try await ReloadBenchmark(server: server, client: client).run(
                connections: self.connections, inFlight: self.inFlight, seconds: self.reloadSeconds,
                reloadInterval: .milliseconds(Int64(self.reloadIntervalMs)))
            let times = figures.reloadMilliseconds
            print(String(format: "hot reload: %d reloads, SIGHUP to new generation serving: median %.2f ms, p90 %.2f ms, max %.2f ms",
                         times.count, times[times.count / 2], times[min(times.count - 1, times.count * 9 / 10)],
                         times.last ?? 0))
            print(String(format: "hot reload: echo 32 B p99 %.1f us without reloads, %.1f us with a reload every %d ms (%.0f vs %.0f msgs/s)",
                         figures.p99Quiet, figures.p99Reloading, self.reloadIntervalMs, figures.throughputQuiet,
                         figures.throughputReloading))
        }

        if self.idleConnections > 0, self.port == nil {
            let figures = try await IdleMemoryBenchmark(
                binary: "\(directory)/agenthost", echoPlugin: "\(directory)/libagenthost-echo.so",
                agentPlugin: FileManager.default.fileExists(atPath: "\(directory)/libagenthost-native-agent.so")
                    ? "\(directory)/libagenthost-native-agent.so" : nil,
                eventLoops: self.eventLoops, count: self.idleConnections, config: self.serverConfig
            ).run(group: group)
            IdleMemoryBenchmark.report(figures, count: self.idleConnections)
        }
        try await group.shutdownGracefully()
    }
}
