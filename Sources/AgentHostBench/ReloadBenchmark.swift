import AgentHostClientSupport
import Foundation
import Glibc
import NIOCore

/// Hot-reload figures under the echo load: how long from SIGHUP until the new generation serves, and the echo p99
/// while reloads happen compared with p99 without.
///
/// A "new version" is the echo plugin with padding appended: ELF loaders ignore trailing bytes, and the SHA-256
/// changes, so the host loads it as a new generation beside the old one, as it would a new build.
struct ReloadBenchmark {
    let server: ServerUnderTest
    let client: EchoLoadClient

    struct Figures {
        var reloadMilliseconds: [Double]
        var p99Quiet: Double
        var p99Reloading: Double
        var throughputQuiet: Double
        var throughputReloading: Double
    }

    func run(connections: Int, inFlight: Int, seconds: Double, reloadInterval: Duration) async throws -> Figures {
        let quiet = try await self.client.run(path: "/echo", connections: connections, inFlight: inFlight,
                                              payloadSize: 32, warmup: .seconds(1),
                                              duration: .milliseconds(Int64(seconds * 1000)))
        var reloadTimes: [Double] = []
        let client = self.client
        let load = Task {
            try await client.run(path: "/echo", connections: connections, inFlight: inFlight, payloadSize: 32,
                                      warmup: .seconds(1), duration: .milliseconds(Int64(seconds * 1000)))
        }
        try await Task.sleep(for: .seconds(1))  // the load's warm-up
        let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var variant = 1
        while ContinuousClock.now < end {
            reloadTimes.append(try self.reloadOnce(variant: variant))
            variant += 1
            try await Task.sleep(for: reloadInterval)
        }
        let reloading = try await load.value
        return Figures(
            reloadMilliseconds: reloadTimes.sorted(),
            p99Quiet: percentileMicroseconds(quiet.latenciesNanoseconds, 0.99),
            p99Reloading: percentileMicroseconds(reloading.latenciesNanoseconds, 0.99),
            throughputQuiet: Double(quiet.messages) / quiet.seconds,
            throughputReloading: Double(reloading.messages) / reloading.seconds)
    }

    /// Deploys variant `n` (rename over the live file), sends SIGHUP, and returns the milliseconds until
    /// `/plugins` shows the new generation serving.
    private func reloadOnce(variant: Int) throws -> Double {
        let before = try self.servingGeneration()
        try self.server.deployEchoVariant(variant)
        let start = ContinuousClock.now
        kill(self.server.process.processIdentifier, SIGHUP)
        while true {
            if let generation = try self.servingGeneration(), generation != before {
                let elapsed = ContinuousClock.now - start
                return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            }
            usleep(500)
            if ContinuousClock.now - start > .seconds(10) { throw BenchError("reload \(variant) never served") }
        }
    }

    private func servingGeneration() throws -> Int? {
        let body = try httpGet(port: self.server.port, path: "/plugins",
                               headers: ["Authorization: Bearer \(self.server.adminToken)"])
        guard let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let plugins = json["plugins"] as? [[String: Any]]
        else { throw BenchError("unexpected /plugins answer: \(body)") }
        return plugins.first { $0["name"] as? String == "echo" && $0["state"] as? String == "serving" }?["generation"]
            as? Int
    }
}

/// A blocking `GET` on 127.0.0.1 returning the body (the bench needs no HTTP client library for one admin call).
func httpGet(port: Int, path: String, headers: [String] = []) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw BenchError("connect to \(port) failed") }
    let extra = headers.map { $0 + "\r\n" }.joined()
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\(extra)\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response += chunk[..<count]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw BenchError("no HTTP response from \(path)") }
    return String(text[split.upperBound...])
}
