import AgentHostPlugins
import Foundation
import Glibc
import Testing

extension ProcessHeavyTests {
    /// The run log through the real binary and a C plugin (Fixtures/runlog.c): create, append, watch, end,
    /// ownership, the history API, `kill -9` and a restart on the same state dir, a state dir that cannot be written.
    @Suite("Run log")
    struct RunLogTests {
        // API keys (the configs hold their SHA-256): two identities.
        static let alice = "Authorization: Bearer ak_runlog_alice_0123456789"
        static let bob = "Authorization: Bearer ak_runlog_bob_0123456789"

        /// A server with the runlog fixture; routes are public so anonymous clients connect too.
        static func startServer(stateDir: String?, extraConfig: String = "", plugins: String? = nil) async throws
            -> ServerProcess
        {
            let plugins = try plugins ?? PluginFixtures.makeDirectory()
            try await PluginFixtures.compileFixture("runlog", into: plugins)
            let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
            try Data("""
                {\(extraConfig)"access": "public", "auth": {"api_keys": [
                    {"sha256": "f2433b3256de59e6975342de6f602b641b6f644a3108bfc6c0b4fab6dcfb7e3b", "subject": "alice"},
                    {"sha256": "8feceeb027b34f341b041e6f66811926a18f92b361c61106baaddddec1d94388", "subject": "bob"}]}}
                """.utf8).write(to: URL(fileURLWithPath: config))
            var arguments = ["--plugins", plugins, "--config", config]
            if let stateDir { arguments += ["--state-dir", stateDir] }
            return try await ServerProcess.start(arguments: arguments)
        }

        static func connect(_ server: ServerProcess, as identity: String?) async throws -> RawWebSocketClient {
            try await RawWebSocketClient.connect(port: server.port, path: "/runlog", extraHeaders: identity.map { [$0] } ?? [])
        }

        /// Sends a command and returns the next message.
        static func command(_ client: RawWebSocketClient, _ text: String) async throws -> String {
            try await client.sendText(text)
            return try await Self.next(client)
        }

        static func next(_ client: RawWebSocketClient) async throws -> String {
            try await withTimeout { try await client.readMessageOrClose() }.text
        }

        /// Reads watch events until the LOG_END line; returns the entries' lines and the end line.
        static func readWatch(_ client: RawWebSocketClient) async throws -> (entries: [String], end: String) {
            var entries: [String] = []
            while true {
                let line = try await Self.next(client)
                if line.hasPrefix("end ") { return (entries, line) }
                entries.append(line)
            }
        }

        static func json(_ body: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        }

        @Test func createAppendWatchEndOwnershipAndHistory() async throws {
            let server = try await Self.startServer(stateDir: try PluginFixtures.makeDirectory() + "/state")
            let writer = try await Self.connect(server, as: Self.alice)
            #expect(try await Self.command(writer, "create run-1") == "created")
            #expect(try await Self.command(writer, "create run-1") == "status 6")  // EXISTS
            #expect(try await Self.command(writer, #"append {"a":1}"#) == "appended 1")
            #expect(try await Self.command(writer, "append plain text") == "appended 2")

            let watcher = try await Self.connect(server, as: Self.alice)
            #expect(try await Self.command(watcher, "open run-1") == "opened")
            #expect(try await Self.command(watcher, "watch 0") == "watching")
            #expect(try await Self.next(watcher) == #"entry 1 {"a":1}"#)
            #expect(try await Self.next(watcher) == "entry 2 plain text")

            // Another identity, and an anonymous client, cannot tell the run exists.
            let bob = try await Self.connect(server, as: Self.bob)
            #expect(try await Self.command(bob, "open run-1") == "status 5")
            let anonymous = try await Self.connect(server, as: nil)
            #expect(try await Self.command(anonymous, "open run-1") == "status 5")

            // A signal reaches the writer's instance (conn 0), which hands it to the writer's connection.
            #expect(try await Self.command(watcher, "signal stop") == "signalled")
            #expect(try await Self.next(writer) == "signal stop")

            #expect(try await Self.command(writer, "append 3") == "appended 3")
            #expect(try await Self.next(watcher) == "entry 3 3")
            #expect(try await Self.command(writer, "end complete") == "ended")
            #expect(try await Self.next(watcher) == "end 3 complete cancelled=0")
            #expect(try await Self.command(writer, "append late") == "status 1")  // CLOSED

            // The history API: the owner only.
            let (status, body) = try await server.get("/runs/run-1", headers: [Self.alice])
            #expect(status == 200, "\(body)")
            let run = try Self.json(body)
            #expect(run["run_id"] as? String == "run-1")
            #expect(run["route"] as? String == "/runlog")
            #expect(run["status"] as? String == "complete")
            #expect(run["first_seq"] as? Int == 1)
            #expect(run["last_seq"] as? Int == 3)
            let frames = try #require(run["frames"] as? [Any])
            #expect((frames.first as? [String: Any])?["a"] as? Int == 1)  // valid JSON is embedded as JSON
            #expect(frames.dropFirst().first as? String == "plain text")  // anything else as a string
            #expect(try await server.get("/runs/run-1", headers: [Self.bob]).status == 404)
            #expect(try await server.get("/runs/missing", headers: [Self.alice]).status == 404)
            #expect(try await server.get("/runs/run-1").status == 401)
            #expect(try await server.get("/runs/run-1?route=/elsewhere", headers: [Self.alice]).status == 404)
            let (listStatus, listing) = try await server.get("/runs?route=/runlog&limit=10", headers: [Self.alice])
            #expect(listStatus == 200)
            let runs = try #require(try Self.json(listing)["runs"] as? [[String: Any]])
            #expect(runs.map { $0["run_id"] as? String } == ["run-1"])
            #expect(try await server.get("/runs?limit=100000", headers: [Self.alice]).status == 400)
            // A route cut at a NUL would list /runlog's runs; a broken escape is not read half-decoded.
            #expect(try await server.get("/runs?route=/runlog%00x", headers: [Self.alice]).status == 400)
            #expect(try await server.get("/runs?route=/runlog%ZZ", headers: [Self.alice]).status == 400)
            #expect(try await server.get("/runs", headers: [Self.bob]).body == #"{"runs":[]}"#)

            server.signal(SIGTERM)
            _ = try await server.waitForExit()
        }

        @Test func anonymousRunsNeedTheirSecret() async throws {
            let server = try await Self.startServer(stateDir: nil)
            let writer = try await Self.connect(server, as: nil)
            #expect(try await Self.command(writer, "create anon-1") == "status 3")  // anonymous: a secret is required
            #expect(try await Self.command(writer, "create anon-1 s3cret-s3cret-s3cret") == "created")
            #expect(try await Self.command(writer, "append x") == "appended 1")
            let other = try await Self.connect(server, as: nil)
            #expect(try await Self.command(other, "open anon-1 wrong-wrong-wrong-wrong") == "status 5")
            #expect(try await Self.command(other, "open anon-1 s3cret-s3cret-s3cret") == "opened")
            #expect(try await Self.command(other, "watch 0") == "watching")
            #expect(try await Self.next(other) == "entry 1 x")
            // The writer's connection goes away: its handle stays the instance's, the run stays live.
            await writer.close()
            #expect(try await Self.command(other, "info") == "info 0 1 1 live")
            server.signal(SIGTERM)
            _ = try await server.waitForExit()
        }

        @Test func killedServerRestartsWithItsRuns() async throws {
            let stateDir = try PluginFixtures.makeDirectory() + "/state"
            let first = try await Self.startServer(stateDir: stateDir)
            let client = try await Self.connect(first, as: Self.alice)
            #expect(try await Self.command(client, "create done") == "created")
            #expect(try await Self.command(client, "burst 50") == "burst done 50")
            #expect(try await Self.command(client, "append {\"bytes\":\"é\\u0000\"}") == "appended 51")
            #expect(try await Self.command(client, "end complete") == "ended")
            let live = try await Self.connect(first, as: Self.alice)
            #expect(try await Self.command(live, "create live") == "created")
            #expect(try await Self.command(live, "append {\"step\":1}") == "appended 1")
            // The history API stores what was appended before it answers: both runs are on disk now.
            let (status, before) = try await first.get("/runs/done", headers: [Self.alice])
            #expect(status == 200)
            #expect(try Self.json(try await first.get("/runs/live", headers: [Self.alice]).body)["last_seq"] as? Int == 1)

            first.signal(SIGKILL)
            _ = try await first.waitForExit()

            let second = try await Self.startServer(stateDir: stateDir)
            let (againStatus, after) = try await second.get("/runs/done", headers: [Self.alice])
            #expect(againStatus == 200)
            #expect(after == before)  // byte for byte
            let ended = try Self.json(try await second.get("/runs/live", headers: [Self.alice]).body)
            #expect(ended["status"] as? String == "error")
            // Numbered past what the killed server may have sent unstored (RunLogConfiguration.orphanSeqGap).
            #expect(ended["last_seq"] as? Int == 2 + (1 << 20))
            let terminal = try #require((ended["frames"] as? [Any])?.last as? [String: Any])
            #expect(terminal["type"] as? String == "completion")
            #expect(terminal["run_id"] as? String == "live")
            #expect(terminal["seq"] as? Int == 2 + (1 << 20))
            #expect((terminal["error"] as? String)?.contains("restarted") == true)

            // A watch reads the ended run back from the store.
            let reader = try await Self.connect(second, as: Self.alice)
            #expect(try await Self.command(reader, "open done") == "opened")
            #expect(try await Self.command(reader, "info") == "info 1 1 51 complete")
            #expect(try await Self.command(reader, "watch 0") == "watching")
            let (entries, end) = try await Self.readWatch(reader)
            #expect(entries.count == 51)
            #expect(entries.first == #"entry 1 {"n":1}"#)
            #expect(entries.last == "entry 51 {\"bytes\":\"é\\u0000\"}")
            #expect(end == "end 51 complete cancelled=0")

            // A second server cannot take the same state dir: it exits at once and says why.
            let (exitStatus, errors) = try await Self.runToExit(["serve", "--listen", "127.0.0.1:0", "--state-dir", stateDir])
            #expect(exitStatus != 0)
            #expect(errors.contains("another AgentHost server is using the state dir"), "\(errors)")
            second.signal(SIGTERM)
            _ = try await second.waitForExit()
        }

        @Test func unwritableStateDirKeepsRunsInMemory() async throws {
            // As root, permissions stop nothing: a state dir below a regular file cannot be created by anyone.
            let parent = try PluginFixtures.makeDirectory() + "/not-a-directory"
            try Data("x".utf8).write(to: URL(fileURLWithPath: parent))
            let server = try await Self.startServer(stateDir: parent + "/state")
            let writer = try await Self.connect(server, as: Self.alice)
            #expect(try await Self.command(writer, "create run") == "created")
            let watcher = try await Self.connect(server, as: Self.alice)
            #expect(try await Self.command(watcher, "open run") == "opened")
            #expect(try await Self.command(watcher, "watch 0") == "watching")
            for round in 0 ..< 5 {
                #expect(try await Self.command(writer, "burst 20") == "burst done \(round * 20 + 20)")
            }
            let (entries, _) = try await withTimeout {
                try await Self.readWatchCount(watcher, 100)
            }
            #expect(entries.last == #"entry 100 {"n":20}"#)
            let (_, metrics) = try await server.get("/metrics", headers: [ServerProcess.adminHeader])
            let errors = metrics.split(separator: "\n").first { $0.hasPrefix("agenthost_runlog_store_errors_total") }
            let count = errors.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? 0
            #expect(count > 0, "\(metrics)")
            server.signal(SIGTERM)
            let (_, log) = try await server.waitForExit()
            #expect(log.components(separatedBy: "the run log store failed").count - 1 == 1, "\(log)")
        }

        @Test func aStateDirOthersCanWriteIsRefused() async throws {
            // Whoever can write there can read every run (or plant links): refused like such a plugin directory.
            let stateDir = try PluginFixtures.makeDirectory() + "/state"
            #expect(mkdir(stateDir, 0o700) == 0)
            #expect(chmod(stateDir, 0o777) == 0)
            let (status, errors) = try await Self.runToExit(["serve", "--listen", "127.0.0.1:0", "--state-dir", stateDir])
            #expect(status != 0)
            #expect(errors.contains("can be written by others"), "\(errors)")
            let (workersStatus, workersErrors) = try await Self.runToExit(
                ["serve", "--listen", "127.0.0.1:0", "--workers", "2", "--state-dir", stateDir])
            #expect(workersStatus != 0)
            #expect(workersErrors.contains("can be written by others"), "\(workersErrors)")
        }

        @Test func aStateDirWhoseLockCannotBeTakenNeverOpensTheStore() async throws {
            // The store is writable but the lock is not (here a directory named lock; for another user a lock file
            // it cannot open): without the lock, a second server could share the store, so runs stay in memory.
            let stateDir = try PluginFixtures.makeDirectory() + "/state"
            #expect(mkdir(stateDir, 0o700) == 0)
            #expect(mkdir(stateDir + "/lock", 0o700) == 0)
            let server = try await Self.startServer(stateDir: stateDir)
            let writer = try await Self.connect(server, as: Self.alice)
            #expect(try await Self.command(writer, "create run") == "created")
            #expect(try await Self.command(writer, "burst 20") == "burst done 20")
            #expect(try await Self.command(writer, "end complete") == "ended")
            let (status, _) = try await server.get("/runs/run", headers: [Self.alice])
            #expect(status == 503)  // the store is failing (not opened): asked again later, not "no such run"
            server.signal(SIGTERM)
            let (_, log) = try await server.waitForExit()
            #expect(log.contains("the state dir cannot be written"), "\(log)")
            #expect(!FileManager.default.fileExists(atPath: stateDir + "/runlog.sqlite"))
        }

        @Test func aWatchIsPacedByTheClientsOutboundQueue() async throws {
            // 48 MiB of entries (far more than the kernel's socket buffers take) for a client that does not read, against
            // a hard limit of 1 MiB: delivered all at once, the connection would be closed with 1008; paced, it waits at
            // the high-water mark and gets them all.
            let server = try await Self.startServer(stateDir: nil, extraConfig: """
                "run_log": {"max_bytes_per_log": 134217728},
                "websocket": {"outbound_hard_limit": 1048576, "outbound_high_watermark": 131072, "outbound_low_watermark": 32768},
                """)
            let writer = try await Self.connect(server, as: Self.alice)
            #expect(try await Self.command(writer, "create big") == "created")
            #expect(try await Self.command(writer, "fill 12000 4096") == "fill done 12000")
            #expect(try await Self.command(writer, "end complete") == "ended")
            let reader = try await Self.connect(server, as: Self.alice)
            #expect(try await Self.command(reader, "open big") == "opened")
            try await reader.sendText("watch 0")
            // The client reads nothing for a while: the server fills the socket and must wait (the test's premise).
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await Self.next(reader) == "watching")
            let (entries, end) = try await withTimeout(seconds: 60) { try await Self.readWatch(reader) }
            #expect(entries.count == 12000, "\(end) \(entries.suffix(2).map { $0.prefix(40) })")
            #expect(entries.last?.hasPrefix("entry 12000 xxxx") == true)
            #expect(end == "end 12000 complete cancelled=0")
            server.signal(SIGTERM)
            _ = try await server.waitForExit()
        }

        @Test func aRunOutlivesItsPluginGeneration() async throws {
            let plugins = try PluginFixtures.makeDirectory()
            // The replaced generation keeps its sockets up to 10 s and the runs it writes up to 12 s after the reload.
            let server = try await Self.startServer(stateDir: nil, extraConfig: """
                "drain_timeout_ms": 10000, "run_drain_timeout_ms": 12000,
                """, plugins: plugins)
            let writer = try await Self.connect(server, as: Self.alice)
            #expect(try await Self.command(writer, "create run-r") == "created")
            #expect(try await Self.command(writer, "append a") == "appended 1")

            // Deploy generation 2 beside the draining generation 1, which keeps writing the run.
            let staging = try PluginFixtures.makeDirectory()
            let built = try await PluginFixtures.compile(source: "\(PluginFixtures.fixtureDirectory)/runlog.c", into: staging,
                                                         as: "runlog.so", defines: [#"RUNLOG_VERSION="2""#])
            #expect(rename(built, "\(plugins)/runlog.so") == 0)
            server.signal(SIGHUP)
            try await withTimeout {
                while try await !server.plugins().contains(where: { $0.state == "serving" && $0.version == "2" }) {
                    try await Task.sleep(for: .milliseconds(10))
                }
            }

            // A client of the new generation opens the run the old one writes, and follows it.
            let reader = try await Self.connect(server, as: Self.alice)
            #expect(try await Self.command(reader, "open run-r") == "opened")
            #expect(try await Self.command(reader, "watch 0") == "watching")
            #expect(try await Self.next(reader) == "entry 1 a")
            #expect(try await Self.command(writer, "append b") == "appended 2")
            #expect(try await Self.next(reader) == "entry 2 b")

            // The old generation's last connection goes, but it still writes a live run: it is kept (its client
            // could resume through the new generation) until the run drain deadline; then its instance is dropped,
            // and with it the run's writer. The host ends the run with the terminal frame.
            await writer.close()
            let (entries, end) = try await withTimeout(seconds: 60) { try await Self.readWatch(reader) }
            #expect(await eventually { server.logText.contains("run drain deadline passed") }, "\(server.logText)")
            #expect(entries.count == 1)
            #expect(entries.first?.hasPrefix(#"entry 3 {"type":"completion","status":"error""#) == true)
            #expect(end == "end 3 error cancelled=0")
            server.signal(SIGTERM)
            _ = try await server.waitForExit()
        }

        /// Runs `agenthost` with `arguments` until it exits; returns its status and stderr.
        static func runToExit(_ arguments: [String]) async throws -> (Int32, String) {
            let executable = try ServerProcess.product("agenthost")
            return try await blocking {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
                let errors = Pipe()
                process.standardError = errors
                process.standardOutput = FileHandle.nullDevice
                try process.run()
                let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                return (process.terminationStatus, text)
            }
        }

        static func readWatchCount(_ client: RawWebSocketClient, _ count: Int) async throws -> ([String], Int) {
            var entries: [String] = []
            while entries.count < count { entries.append(try await Self.next(client)) }
            return (entries, entries.count)
        }
    }
}
