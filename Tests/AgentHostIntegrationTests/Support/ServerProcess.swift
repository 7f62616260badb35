import AgentHostPlugins
import Foundation
import Glibc
import Synchronization

/// The `agenthost` binary as an operator runs it: a child process whose listening line tells the port.
final class ServerProcess: @unchecked Sendable {
    // @unchecked: used from one test task at a time.
    let process = Process()
    let port: Int
    let listeningLine: String
    private let errors: Pipe
    /// Everything the server logged so far: stderr is drained continuously, or a chatty server would block once
    /// the pipe's buffer (64 KiB) is full.
    private let log = LogBuffer()

    /// The folder SwiftPM builds products into: the test bundle sits in it (`swift build` puts the `agenthost`
    /// binary and the plugins' .so files beside it).
    static let buildDirectory: String = {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().path
    }()

    struct NotBuilt: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(self.path) is missing: run `swift build` before `swift test` (see README)" }
    }

    static func product(_ name: String) throws -> String {
        let path = "\(buildDirectory)/\(name)"
        guard FileManager.default.fileExists(atPath: path) else { throw NotBuilt(path: path) }
        return path
    }

    /// Starts the server and waits (off the cooperative pool) for its listening line.
    static func start(arguments: [String], environment: [String: String] = [:]) async throws -> ServerProcess {
        try await blocking { try ServerProcess(arguments: arguments, environment: environment) }
    }

    /// Runs `agenthost` with `arguments` until it exits (a server expected to refuse to start); returns its exit
    /// status and stderr.
    static func runToExit(arguments: [String]) async throws -> (status: Int32, log: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.product("agenthost"))
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let log = try await blocking {
            let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return log
        }
        return (process.terminationStatus, log)
    }

    /// The admin token every test server gets (admin routes answer nobody without it, loopback included).
    static let adminToken = "test-admin-token"
    static let adminHeader = "Authorization: Bearer \(adminToken)"

    /// The handshake deadline test servers get unless their config sets one: the whole suite on two cores has kept
    /// a client from finishing its upgrade within the 10 s default (three servers cut their clients off at once).
    static let testHandshakeTimeoutMilliseconds = 60_000

    /// `arguments` with a config file that sets a long handshake deadline: the test's own file with the key added
    /// when it has none (a file that is not a JSON object is left for the server to refuse), or a new file.
    static func withLongHandshakeDeadline(_ arguments: [String]) throws -> [String] {
        var arguments = arguments
        if let index = arguments.firstIndex(of: "--config"), index + 1 < arguments.count {
            let path = arguments[index + 1]
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: path)),
                var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                object["handshake_timeout_ms"] == nil
            else { return arguments }
            // In place: a test may rewrite its file and send SIGHUP (that file then says what it says).
            object["handshake_timeout_ms"] = Self.testHandshakeTimeoutMilliseconds
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
            return arguments
        }
        let path = try PluginFixtures.makeDirectory() + "/agenthost.json"
        try Data(#"{"handshake_timeout_ms": \#(Self.testHandshakeTimeoutMilliseconds)}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        return arguments + ["--config", path]
    }

    private init(arguments: [String], environment: [String: String]) throws {
        self.process.executableURL = URL(fileURLWithPath: try Self.product("agenthost"))
        self.process.arguments = ["serve", "--listen", "127.0.0.1:0"] + (try Self.withLongHandshakeDeadline(arguments))
        self.process.environment = ProcessInfo.processInfo.environment
            .merging(["AGENTHOST_ADMIN_TOKEN": Self.adminToken]) { _, new in new }
            .merging(environment) { _, new in new }
        let output = Pipe()
        self.errors = Pipe()
        self.process.standardOutput = output
        self.process.standardError = self.errors
        let log = self.log
        self.errors.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            log.bytes.withLock { $0 += data }
        }
        try self.process.run()
        // The first stdout line is the listening line; read it byte by byte (no buffering past it).
        var line = [UInt8]()
        let handle = output.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            guard let first = byte.first else { break }
            if first == UInt8(ascii: "\n") { break }
            line.append(first)
        }
        self.listeningLine = String(decoding: line, as: UTF8.self)
        guard let colon = self.listeningLine.lastIndex(of: ":"),
            let port = Int(self.listeningLine[self.listeningLine.index(after: colon)...])
        else {
            self.process.terminate()
            self.process.waitUntilExit()
            let logged = log.text
            throw NotBuilt(path: "listening line (got '\(self.listeningLine)'; stderr: \(logged))")
        }
        self.port = port
    }

    func signal(_ signal: Int32) { kill(self.process.processIdentifier, signal) }

    /// Resident memory of the server process, in bytes.
    var residentBytes: Int {
        let status = (try? String(contentsOfFile: "/proc/\(self.process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
    }

    /// `GET path` over a fresh connection; returns status and body.
    func get(_ path: String, headers: [String] = []) async throws -> (status: Int, body: String) {
        let client = try await RawWebSocketClient.connectTCP(port: self.port)
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for header in headers { request += header + "\r\n" }
        try await client.sendRaw(Array((request + "\r\n").utf8))
        let status = try await client.readHTTPStatus()
        let body = try await client.readToEnd()
        return (status, body)
    }

    /// The server's `/plugins` list.
    func plugins() async throws -> [PluginStatus] {
        struct Listing: Decodable { var plugins: [PluginStatus] }
        let (status, body) = try await self.get("/plugins", headers: [Self.adminHeader])
        guard status == 200 else { throw NotBuilt(path: "/plugins answered \(status): \(body)") }
        return try JSONDecoder().decode(Listing.self, from: Data(body.utf8)).plugins
    }

    /// Waits for the process to exit and returns its status and everything it logged.
    func waitForExit() async throws -> (status: Int32, log: String) {
        let process = self.process
        try await blocking {
            process.waitUntilExit()
            usleep(50_000)  // let the readability handler take the last bytes
        }
        return (self.process.terminationStatus, self.logText)
    }

    var logText: String { self.log.text }

    deinit {
        if self.process.isRunning { self.process.terminate() }
    }
}

final class LogBuffer: Sendable {
    let bytes = Mutex<[UInt8]>([])
    var text: String { String(decoding: self.bytes.withLock { $0 }, as: UTF8.self) }
}
