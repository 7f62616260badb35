import AgentHostPlugins
import Foundation
import Glibc
import Synchronization

/// The real `agenthost` binary serving the built agent plugins: native-agent, c-agent and autogen-team, whose teams are
/// made at test time by Plugins/autogen-team/python/make_teams.py (AutoGen's ReplayChatCompletionClient: offline
/// and deterministic) and run by real AutoGen workers.
enum AgentServer {
    static let root = PluginFixtures.repositoryRoot.path

    struct PythonMissing: Error, CustomStringConvertible {
        let python: String
        var description: String {
            "\(self.python) is missing: the agent tests need AutoGen; run ./scripts/setup-python.sh (README's test command does)"
        }
    }

    /// The Python with autogen-agentchat: $AGENTHOST_PYTHON, else the venv scripts/setup-python.sh makes.
    static func python() throws -> String {
        let python = ProcessInfo.processInfo.environment["AGENTHOST_PYTHON"] ?? "\(root)/.venv-autogen/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { throw PythonMissing(python: python) }
        return python
    }

    /// The example teams, written once per test run.
    static func teams() throws -> String {
        try self.teamsOnce.withLock { cached in
            if let cached { return cached }
            let directory = try PluginFixtures.makeDirectory() + "/teams"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try python())
            process.arguments = ["\(root)/Plugins/autogen-team/python/make_teams.py", directory, "--failure-teams"]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw PythonMissing(python: "make_teams.py (status \(process.terminationStatus))") }
            cached = directory
            return directory
        }
    }
    private static let teamsOnce = Mutex<String?>(nil)

    /// Every example team at /agents/<name>; user_proxy also at AutoGen Studio's /api/ws/runs/*.
    static func start(workers: Int = 2, autogen extra: [String: Any] = [:], native: [String: Any] = [:],
                      cAgent: [String: Any] = [:], serverConfig: [String: Any] = [:], arguments: [String] = [])
        async throws -> ServerProcess
    {
        try await self.startWithPlugins(workers: workers, autogen: extra, native: native, cAgent: cAgent,
                                  serverConfig: serverConfig, arguments: arguments).server
    }

    /// `start`, also returning the plugin directory (for deploys).
    static func startWithPlugins(workers: Int = 2, autogen extra: [String: Any] = [:], native: [String: Any] = [:],
                                 cAgent: [String: Any] = [:], serverConfig: [String: Any] = [:],
                                 arguments: [String] = [])
        async throws -> (server: ServerProcess, plugins: String)
    {
        let teams = try await blocking { try self.teams() }
        var routes: [String: Any] = ["/api/ws/runs/*": ["team_file": "\(teams)/user_proxy.json"]]
        for name in ["assistant_streaming", "assistant_tool_call", "assistant_tool_reflect", "round_robin",
                     "user_proxy", "swarm_handoff", "slow", "crash", "hang"]
        {
            routes["/agents/\(name)"] = ["team_file": "\(teams)/\(name).json"]
        }
        var autogen: [String: Any] = [
            "python": try python(),
            "worker": "\(root)/Plugins/autogen-team/python/agenthost_autogen_worker.py",
            "workers": workers,
            "routes": routes,
            // The default 10 s is for a server starting alone; beside the whole suite on two cores, a worker's
            // first import of AutoGen has taken longer, and the plugin was refused (every agent route 404).
            "start_timeout_ms": 60_000,
        ]
        autogen.merge(extra) { $1 }
        var config = serverConfig
        config["plugin_config"] = ["autogen-team": autogen, "native-agent": native, "c-agent": cAgent]
        let directory = try PluginFixtures.makeDirectory()
        let path = directory + "/agenthost.json"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        let plugins = directory + "/plugins"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        for name in ["libagenthost-native-agent.so", "libagenthost-autogen-team.so", "libagenthost-c-agent.so"] {
            try FileManager.default.copyItem(atPath: try ServerProcess.product(name), toPath: "\(plugins)/\(name)")
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(plugins)/\(name)")
        }
        return (try await self.restart(plugins: plugins, arguments: arguments), plugins)
    }

    /// Starts the server again on what `startWithPlugins` wrote (its plugin directory and config beside it), with
    /// `arguments` (the same `--state-dir`, say).
    static func restart(plugins: String, arguments: [String] = []) async throws -> ServerProcess {
        let config = URL(fileURLWithPath: plugins).deletingLastPathComponent().appendingPathComponent("agenthost.json")
        return try await ServerProcess.start(arguments: ["--plugins", plugins, "--config", config.path] + arguments)
    }

    /// Deploys a new build of the plugin `library` (same code, new bytes: a new SHA-256), written beside and renamed
    /// over, reloads, and waits until its old generation drains while the new one serves.
    static func redeploy(_ library: String, plugin name: String, plugins: String, server: ServerProcess) async throws {
        let live = "\(plugins)/\(library)"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: live))
        bytes.append(Data(count: 64))
        let staged = "\(plugins)/.staged.tmp"
        try bytes.write(to: URL(fileURLWithPath: staged))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: staged)
        guard rename(staged, live) == 0 else { throw ServerProcess.NotBuilt(path: "rename over \(live)") }
        server.signal(SIGHUP)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let generations = try await server.plugins().filter { $0.name == name }
            if generations.contains(where: { $0.state == "draining" }) && generations.contains(where: { $0.state == "serving" }) {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ServerProcess.NotBuilt(path: "a draining and a serving generation of \(name) after the reload")
    }
}
