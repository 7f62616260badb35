import Foundation
import Glibc
import Testing

/// `agenthost serve --workers N` as an operator runs it, with helpers to see which worker serves a socket.
struct WorkerServer {
    let server: ServerProcess
    let directory: String

    /// A plugin directory with the real echo plugin and `fixtures`, and a supervisor of `workers` workers on it
    /// (one event loop each: two cores are shared by the whole test run).
    static func start(workers: Int = 2, fixtures: [String] = [], config: String = "{}") async throws -> WorkerServer {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory)
        for fixture in fixtures { try await PluginFixtures.compileFixture(fixture, into: directory) }
        let configFile = try PluginFixtures.makeDirectory() + "/agenthost.json"
        try Data(config.utf8).write(to: URL(fileURLWithPath: configFile))
        // Without the Swift runtime's backtracer a crashing worker dies at once, not after seconds of symbolication
        // (longer still on a loaded machine): these tests are about what the supervisor does next.
        let server = try await ServerProcess.start(arguments: [
            "--plugins", directory, "--workers", "\(workers)", "--event-loops", "1", "--config", configFile,
        ], environment: ["SWIFT_BACKTRACE": "enable=no"])
        return WorkerServer(server: server, directory: directory)
    }

    /// The pid of the worker serving `client` (the `agenthost-worker` header of its upgrade answer).
    static func workerPid(of client: RawWebSocketClient) -> Int32? {
        for line in client.handshakeResponse.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "agenthost-worker" {
                return Int32(parts[1].trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    /// Opens `path` sockets until `want` different workers serve at least one (the kernel picks the worker that
    /// accepts: it cannot be chosen); returns every socket opened, by worker pid.
    func socketsOnEveryWorker(path: String, want: Int = 2, attempts: Int = 60) async throws
        -> [Int32: [RawWebSocketClient]]
    {
        var byWorker: [Int32: [RawWebSocketClient]] = [:]
        for _ in 0..<attempts {
            let client = try await RawWebSocketClient.connect(port: self.server.port, path: path)
            let pid = try #require(Self.workerPid(of: client), "no agenthost-worker header: \(client.handshakeResponse)")
            byWorker[pid, default: []].append(client)
            if byWorker.count >= want && byWorker.values.allSatisfy({ $0.count >= 2 }) { break }
        }
        return byWorker
    }

    /// Sends `text` and expects it back.
    static func echoes(_ client: RawWebSocketClient, _ text: String) async throws -> Bool {
        try await client.sendText(text)
        let reply = try await withTimeout { try await client.readMessageOrClose() }
        return reply.text == text
    }

    /// Waits until the log holds `count` occurrences of `text`.
    func waitForLog(_ text: String, count: Int = 1, seconds: Double = 30) async -> Bool {
        await eventually(seconds: seconds) { self.server.logText.components(separatedBy: text).count - 1 >= count }
    }

    /// `GET /health` (admin) as JSON.
    func health() async throws -> [String: Any] {
        let (status, body) = try await self.server.get("/health", headers: [ServerProcess.adminHeader])
        #expect(status == 200, "\(body)")
        return try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
    }

    /// Whether process `pid` is gone (or a zombie nobody reaped yet).
    static func isGone(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return true }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }
}
