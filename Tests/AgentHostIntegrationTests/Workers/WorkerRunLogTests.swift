import Foundation
import Glibc
import Testing

extension ProcessHeavyTests {
    /// `--workers 2 --state-dir`: a worker that dies leaves no run live in the shared run log.
    @Suite("Worker processes and the run log")
    struct WorkerRunLogTests {
        @Test func theLiveRunsOfACrashedWorkerEndWithATerminalEntry() async throws {
            let plugins = try PluginFixtures.makeDirectory()
            try await PluginFixtures.compileFixture("runlog", into: plugins)
            try await PluginFixtures.compileFixture("crash_on_message", into: plugins)
            let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
            try Data("""
                {"access": "public", "auth": {"api_keys": [
                    {"sha256": "f2433b3256de59e6975342de6f602b641b6f644a3108bfc6c0b4fab6dcfb7e3b", "subject": "alice"}]}}
                """.utf8).write(to: URL(fileURLWithPath: config))
            let stateDir = try PluginFixtures.makeDirectory() + "/state"
            let server = try await ServerProcess.start(arguments: [
                "--plugins", plugins, "--config", config, "--state-dir", stateDir, "--workers", "2", "--event-loops", "1",
            ], environment: ["SWIFT_BACKTRACE": "enable=no"])

            let writer = try await RunLogTests.connect(server, as: RunLogTests.alice)
            let victim = try #require(WorkerServer.workerPid(of: writer))
            #expect(try await RunLogTests.command(writer, "create live") == "created")
            #expect(try await RunLogTests.command(writer, "append {\"step\":1}") == "appended 1")
            // Any worker reads the shared store: wait until the entry is written behind.
            let stored = await eventuallyAsync {
                let body = try? await server.get("/runs/live", headers: [RunLogTests.alice]).body
                return body.flatMap { try? RunLogTests.json($0)["last_seq"] as? Int } == 1
            }
            #expect(stored)

            // A crash socket on the writer's worker (the kernel picks the worker: open until one lands there).
            var crasher: RawWebSocketClient?
            for _ in 0..<60 {
                let client = try await RawWebSocketClient.connect(port: server.port, path: "/crash")
                if WorkerServer.workerPid(of: client) == victim {
                    crasher = client
                    break
                }
            }
            let onVictim = try #require(crasher, "no /crash socket landed on worker \(victim)")
            try await onVictim.sendText("crash")
            #expect(await writer.waitForDisconnect())

            var ended: [String: Any] = [:]
            let terminal = await eventuallyAsync {
                guard let body = try? await server.get("/runs/live", headers: [RunLogTests.alice]).body,
                    let run = try? RunLogTests.json(body), run["status"] as? String == "error"
                else { return false }
                ended = run
                return true
            }
            #expect(terminal, "\(server.logText)")
            // Numbered past what the dead worker may have sent unstored (RunLogConfiguration.orphanSeqGap).
            #expect(ended["last_seq"] as? Int == 2 + (1 << 20))
            let frame = try #require((ended["frames"] as? [Any])?.last as? [String: Any])
            #expect(frame["type"] as? String == "completion")
            #expect((frame["error"] as? String)?.contains("killed by SIGSEGV") == true, "\(frame)")
            #expect(server.logText.contains("ended the live runs of a dead worker"))

            server.signal(SIGTERM)
            #expect(try await server.waitForExit().status == 0)
        }

        /// Polls an async condition for up to `seconds`.
        func eventuallyAsync(seconds: Double = 20, _ condition: () async -> Bool) async -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if await condition() { return true }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return await condition()
        }
    }
}
