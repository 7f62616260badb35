import AgentHostClientSupport
import Foundation
import Glibc
import NIOPosix

/// A child process whose lifetime is the benchmark's.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: the Process is only started, read and stopped.
    let process = Process()

    init(executable: String, arguments: [String], environment: [String: String] = [:], output: String) throws {
        self.process.executableURL = URL(fileURLWithPath: executable)
        self.process.arguments = arguments
        self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        FileManager.default.createFile(atPath: output, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        self.process.standardOutput = log
        self.process.standardError = log
        try self.process.run()
    }

    /// Resident memory of the process, in bytes.
    var residentBytes: Int {
        let status = (try? String(contentsOfFile: "/proc/\(self.process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
    }

    /// User plus system CPU seconds this process (not its children) has used.
    var cpuSeconds: Double {
        ProcessStat(path: "/proc/\(self.process.processIdentifier)/stat")?.cpuSeconds ?? 0
    }

    /// SIGTERM, then SIGKILL after 5 s (uvicorn's graceful shutdown can wait on Studio's background tasks forever).
    func stop() {
        guard self.process.isRunning else { return }
        self.process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while self.process.isRunning, Date() < deadline { usleep(20_000) }
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
        self.process.waitUntilExit()
    }

    deinit { self.stop() }
}

/// Waits until `path` (a log file) contains `marker`; returns the line holding it.
func waitForLine(in path: String, containing marker: String, seconds: Double) throws -> String {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.contains(marker) })
        {
            return String(line)
        }
        usleep(50_000)
    }
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    throw BenchError("no '\(marker)' in \(path) after \(seconds) s:\n\(text.suffix(2000))")
}

/// AgentHost serving native-agent and autogen-team (release builds beside this binary).
struct AgentHostUnderTest {
    let child: ChildProcess
    let port: Int

    /// The state dir (the run log on SQLite); nil keeps the run log in memory only ("log off").
    let stateDirectory: String?

    init(binaries: String, repository: String, python: String, workers: Int, tokenDelayMilliseconds: Int,
         directory: String, stateDirectory: String? = nil) throws
    {
        self.stateDirectory = stateDirectory
        let plugins = directory + "/plugins"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        for name in ["libagenthost-native-agent.so", "libagenthost-autogen-team.so"] {
            try? FileManager.default.removeItem(atPath: "\(plugins)/\(name)")
            try FileManager.default.copyItem(atPath: "\(binaries)/\(name)", toPath: "\(plugins)/\(name)")
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(plugins)/\(name)")
        }
        var config: [String: Any] = [
            "log_level": "warning",
            // All load comes from one address, as fast as it can: lift the per-address and rate limits.
            "max_connections": 0, "max_connections_per_address": 0,
            "websocket": ["max_messages_per_second": 0],
            "plugin_config": [
                "native-agent": ["token_delay_ms": tokenDelayMilliseconds, "resume_grace_ms": 1000, "max_runs": 100_000,
                                 "max_runs_per_address": 100_000, "max_runs_per_identity": 100_000],
                "autogen-team": [
                    "python": python,
                    "max_runs_per_address": 100_000,
                    "worker": "\(repository)/Plugins/autogen-team/python/agenthost_autogen_worker.py",
                    "workers": workers,
                    "resume_grace_ms": 1000,
                    "routes": ["/agents/team": ["team_file": "\(repository)/examples/teams/round_robin.json"]],
                ],
            ],
        ]
        if let stateDirectory { config["state_dir"] = stateDirectory }
        let path = directory + "/agenthost.json"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        let log = directory + "/agenthost.log"
        self.child = try ChildProcess(executable: "\(binaries)/agenthost",
                                      arguments: ["serve", "--listen", "127.0.0.1:0", "--plugins", plugins, "--config", path],
                                      output: log)
        let line = try waitForLine(in: log, containing: "listening on", seconds: 20)
        guard let port = Int(line.split(separator: ":").last ?? "") else { throw BenchError("no port in '\(line)'") }
        self.port = port
    }

    /// Bytes the run log's store takes on disk (the SQLite file, its WAL and shared memory), 0 with no state dir.
    var storeBytes: Int {
        guard let stateDirectory,
            let names = try? FileManager.default.contentsOfDirectory(atPath: stateDirectory) else { return 0 }
        return names.reduce(0) { total, name in
            let attributes = try? FileManager.default.attributesOfItem(atPath: "\(stateDirectory)/\(name)")
            return total + ((attributes?[.size] as? Int) ?? 0)
        }
    }
}

/// AutoGen Studio 0.4.2.2 under uvicorn, the way the fixtures' captures were made: the baseline.
struct StudioUnderTest: Sendable {
    let child: ChildProcess
    let port: Int
    let sessionID: Int

    static let user = "guestuser@gmail.com"  // Studio's user when auth is off: runs must belong to it

    init(python: String, directory: String, port: Int) async throws {
        let uvicorn = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("uvicorn").path
        let log = directory + "/studio.log"
        self.child = try ChildProcess(
            executable: uvicorn,
            arguments: ["autogenstudio.web.app:app", "--host", "127.0.0.1", "--port", "\(port)", "--log-level", "warning"],
            environment: ["AUTOGENSTUDIO_APPDIR": directory,
                          "AUTOGENSTUDIO_DATABASE_URI": "sqlite:///\(directory)/studio.sqlite"],
            output: log)
        _ = try waitForLine(in: log, containing: "Application startup complete", seconds: 60)
        self.port = port
        let session = try await httpPost(group: MultiThreadedEventLoopGroup.singleton, port: port, path: "/api/sessions/",
                                         json: #"{"user_id":"\#(Self.user)","name":"bench"}"#)
        guard let id = Self.firstInteger(after: "\"id\":", in: session) else { throw BenchError("no session id in \(session)") }
        self.sessionID = id
    }

    /// Studio's flow for every run: create it over HTTP, then open /api/ws/runs/{id}.
    func nextPath() async throws -> String {
        let body = try await httpPost(group: MultiThreadedEventLoopGroup.singleton, port: self.port, path: "/api/runs/",
                                      json: #"{"session_id":\#(self.sessionID),"user_id":"\#(Self.user)"}"#)
        guard let id = Self.firstInteger(after: "\"run_id\":", in: body) else { throw BenchError("no run id in \(body)") }
        return "/api/ws/runs/\(id)"
    }

    static func firstInteger(after key: String, in text: String) -> Int? {
        guard let range = text.range(of: key) else { return nil }
        return Int(text[range.upperBound...].drop { $0 == " " }.prefix { $0.isNumber })
    }
}
