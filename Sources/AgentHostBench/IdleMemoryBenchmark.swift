import Foundation
import NIOCore
import NIOSSL

/// Server memory per idle WebSocket, for plain ws and for wss, on the plugin route, on an agent route with no run
/// (the native agent at /agents/native, when its plugin is built) and on the bare NIO baseline, in the same run.
/// Each figure gets a fresh server: the allocator keeps what closed connections freed, so a second
/// figure from the same process would start from reused memory and read low.
struct IdleMemoryBenchmark {
    let binary: String
    let echoPlugin: String
    /// The native agent plugin; nil (not built) skips the agent route's figures.
    let agentPlugin: String?
    let eventLoops: Int
    let count: Int
    let config: String?

    struct Figure {
        var scheme: String
        var path: String
        var before: Int
        var after: Int
        var open: Int
        var perConnection: Double { Double(self.after - self.before) / Double(max(self.open, 1)) }
    }

    func run(group: any EventLoopGroup) async throws -> [Figure] {
        let certificate = try SelfSignedCertificate.make()
        defer { certificate.remove() }
        var clientConfiguration = TLSConfiguration.makeClientConfiguration()
        clientConfiguration.certificateVerification = .none  // the bench's own throwaway certificate
        let clientContext = try NIOSSLContext(configuration: clientConfiguration)
        var figures: [Figure] = []
        for (scheme, tls) in [("ws", false), ("wss", true)] {
            var routes = [("baseline", ServerUnderTest.baselineRoute), ("plugin", "/echo")]
            if self.agentPlugin != nil { routes.append(("agent", "/agents/native")) }
            for (path, route) in routes {
                let server = try ServerUnderTest(
                    binary: self.binary, echoPlugin: self.echoPlugin, eventLoops: self.eventLoops, config: self.config,
                    extraArguments: tls
                        ? ["--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath] : [],
                    extraPlugins: path == "agent" ? [self.agentPlugin!] : [])
                defer { server.stop() }
                try await Task.sleep(for: .milliseconds(500))  // let start-up allocations settle
                let before = server.residentBytes
                let channels = try await IdleConnections.open(count: self.count, port: server.port, path: route,
                                                              tls: tls ? clientContext : nil, group: group)
                try await Task.sleep(for: .seconds(2))
                figures.append(Figure(scheme: scheme, path: path, before: before, after: server.residentBytes,
                                      open: channels.count))
                for channel in channels { channel.close(promise: nil) }
            }
        }
        return figures
    }

    static func report(_ figures: [Figure], count: Int) {
        print("idle connections (\(count) each, a fresh server per line): server RSS per connection")
        print("scheme  path       RSS before  RSS after   per connection")
        for figure in figures {
            let label = figure.scheme.padding(toLength: 8, withPad: " ", startingAt: 0)
                + figure.path.padding(toLength: 9, withPad: " ", startingAt: 0)
            print(label + String(format: " %7.1f MiB %7.1f MiB %8.0f B (%.2f KiB)", Double(figure.before) / 1048576,
                                 Double(figure.after) / 1048576, figure.perConnection, figure.perConnection / 1024))
        }
        for scheme in ["ws", "wss"] {
            guard let baseline = figures.first(where: { $0.scheme == scheme && $0.path == "baseline" }) else { continue }
            for path in ["plugin", "agent"] {
                guard let figure = figures.first(where: { $0.scheme == scheme && $0.path == path }) else { continue }
                print(String(format: "%@ %@/baseline per idle connection: %.2fx", scheme as NSString, path as NSString,
                             figure.perConnection / max(baseline.perConnection, 1)))
            }
        }
        // The targets, in bytes: "4.00 KiB" can be a few bytes over 4 KiB.
        let targets = ["ws": 4096.0, "wss": 8192.0]
        for figure in figures where figure.path != "baseline" {
            guard let target = targets[figure.scheme] else { continue }
            let bytes = figure.perConnection
            print(String(format: "%@ %@: %.0f B per idle connection (%@ the %.0f B target)", figure.scheme as NSString,
                         figure.path as NSString, bytes, (bytes <= target ? "meets" : "MISSES") as NSString, target))
        }
    }
}
