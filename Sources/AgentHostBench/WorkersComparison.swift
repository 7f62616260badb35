import AgentHostClientSupport
import Foundation
import NIOCore
import NIOPosix

/// `--compare-workers`: echo through the C plugin on `agenthost serve --workers 2 --event-loops 1` against one
/// process with `--event-loops 2`, the same cores for both, measured in alternating (ABBA) rounds of one run.
struct WorkersComparison {
    let directory: String
    let connections: Int
    let inFlight: Int
    let sizes: [Int]
    let seconds: Double
    let rounds: Int
    let config: String?

    func run() async throws {
        let workers = try ServerUnderTest(binary: "\(self.directory)/agenthost",
                                          echoPlugin: "\(self.directory)/libagenthost-echo.so", eventLoops: 1,
                                          config: self.config, extraArguments: ["--workers", "2"])
        defer { workers.stop() }
        let single = try ServerUnderTest(binary: "\(self.directory)/agenthost",
                                         echoPlugin: "\(self.directory)/libagenthost-echo.so", eventLoops: 2,
                                         config: self.config)
        defer { single.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await self.measure(servers: [("workers=2", workers), ("loops=2", single)], group: group)
        try await group.shutdownGracefully()
    }

    private func measure(servers: [(String, ServerUnderTest)], group: any EventLoopGroup) async throws {
        print("agenthost-bench --compare-workers: \(self.connections) connections x \(self.inFlight) in flight on /echo, "
              + "\(self.rounds) x \(self.seconds) s per server and size")
        print("size    server        msgs/s   p50 us   p99 us  server us/msg")
        for size in self.sizes {
            var totals: [String: (messages: Int, seconds: Double, cpu: Double, latencies: [UInt64])] = [:]
            let order = (0..<self.rounds).flatMap { $0 % 2 == 0 ? [0, 1] : [1, 0] }
            for index in order {
                let (name, server) = servers[index]
                let client = EchoLoadClient(group: group, port: server.port)
                let cpuBefore = server.cpuSeconds
                let result = try await client.run(path: "/echo", connections: self.connections, inFlight: self.inFlight,
                                                  payloadSize: size, warmup: .seconds(1),
                                                  duration: .milliseconds(Int64(self.seconds * 1000)))
                var total = totals[name] ?? (0, 0, 0, [])
                total.messages += result.messages
                total.seconds += result.seconds
                total.cpu += server.cpuSeconds - cpuBefore
                total.latencies += result.latenciesNanoseconds
                totals[name] = total
            }
            var rates: [String: Double] = [:]
            for (name, _) in servers {
                guard var total = totals[name] else { continue }
                total.latencies.sort()
                let rate = Double(total.messages) / total.seconds
                rates[name] = rate
                let measuredShare = self.seconds / (self.seconds + 1)
                let cpu = total.cpu * measuredShare / Double(max(total.messages, 1)) * 1e6
                let column = name.padding(toLength: 10, withPad: " ", startingAt: 0)
                print(String(format: "%5d   %@ %10.0f %8.1f %8.1f %10.2f", size, column as NSString, rate,
                             percentileMicroseconds(total.latencies, 0.50),
                             percentileMicroseconds(total.latencies, 0.99), cpu))
            }
            if let split = rates["workers=2"], let shared = rates["loops=2"], shared > 0 {
                let verdict = split >= shared ? "meets" : "MISSES"
                print(String(format: "workers=2 / loops=2 at %d B: throughput %.1f%% (%@ the 100%% target)", size,
                             split / shared * 100, verdict as NSString))
            }
        }
    }
}
