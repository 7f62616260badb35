import AgentHostClientSupport
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// `--compare-build DIR`: echo through the C plugin on this build and on another (a release directory of another
/// commit, with its `agenthost` and `libagenthost-echo.so`), over ws and wss, at each size and depth, in alternating
/// (ABBA) rounds of one run: how a change to the server moves throughput, latency and CPU, measured against the build
/// before it on the same machine at the same time.
struct BuildComparison {
    let builds: [(name: String, directory: String)]
    let connections: Int
    let depths: [Int]
    let sizes: [Int]
    let seconds: Double
    let rounds: Int
    let config: String?

    func run() async throws {
        let certificate = try SelfSignedCertificate.make()
        defer { certificate.remove() }
        var clientConfiguration = TLSConfiguration.makeClientConfiguration()
        clientConfiguration.certificateVerification = .none  // the bench's own throwaway certificate
        let clientContext = try NIOSSLContext(configuration: clientConfiguration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        print("agenthost-bench --compare-build: \(self.connections) connections on /echo, \(self.rounds) x "
              + "\(self.seconds) s per build, scheme, size and depth; builds: "
              + self.builds.map { "\($0.name) = \($0.directory)" }.joined(separator: ", "))
        print("scheme size depth  build        msgs/s   p50 us   p99 us  server us/msg")
        for (scheme, tls) in [("ws", false), ("wss", true)] {
            let servers = try self.builds.map { build in
                try ServerUnderTest(
                    binary: "\(build.directory)/agenthost", echoPlugin: "\(build.directory)/libagenthost-echo.so",
                    eventLoops: 1, config: self.config,
                    extraArguments: tls
                        ? ["--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath] : [])
            }
            defer { servers.forEach { $0.stop() } }
            for size in self.sizes {
                for depth in self.depths {
                    try await self.measure(scheme: scheme, size: size, depth: depth, servers: servers,
                                           tls: tls ? clientContext : nil, group: group)
                }
            }
        }
        try await group.shutdownGracefully()
    }

    private func measure(scheme: String, size: Int, depth: Int, servers: [ServerUnderTest], tls: NIOSSLContext?,
                         group: any EventLoopGroup) async throws {
        var totals = Array(repeating: (messages: 0, seconds: 0.0, cpu: 0.0, latencies: [UInt64]()),
                           count: servers.count)
        let order = (0..<self.rounds).flatMap { $0 % 2 == 0 ? Array(servers.indices) : servers.indices.reversed() }
        for index in order {
            let server = servers[index]
            let client = EchoLoadClient(group: group, port: server.port, tls: tls)
            let cpuBefore = server.cpuSeconds
            let result = try await client.run(path: "/echo", connections: self.connections, inFlight: depth,
                                              payloadSize: size, warmup: .seconds(1),
                                              duration: .milliseconds(Int64(self.seconds * 1000)))
            totals[index].messages += result.messages
            totals[index].seconds += result.seconds
            totals[index].cpu += server.cpuSeconds - cpuBefore
            totals[index].latencies += result.latenciesNanoseconds
        }
        var rates: [Double] = []
        for (index, build) in self.builds.enumerated() {
            var total = totals[index]
            total.latencies.sort()
            let rate = Double(total.messages) / max(total.seconds, 1e-9)
            rates.append(rate)
            // CPU is sampled over warm-up and measurement; scale it to the measured share of the run.
            let cpu = total.cpu * (self.seconds / (self.seconds + 1)) / Double(max(total.messages, 1)) * 1e6
            print(String(format: "%-6@ %4d %5d  %-10@ %10.0f %8.1f %8.1f %10.2f", scheme as NSString, size, depth,
                         build.name as NSString, rate, percentileMicroseconds(total.latencies, 0.50),
                         percentileMicroseconds(total.latencies, 0.99), cpu))
        }
        if rates.count == 2, rates[0] > 0 {
            print(String(format: "%@ %d B depth %d: %@/%@ throughput %.1f%%", scheme as NSString, size, depth,
                         self.builds[1].name as NSString, self.builds[0].name as NSString, rates[1] / rates[0] * 100))
        }
    }
}
