import AgentHostPlugins
import Foundation
import Glibc
import Testing

extension ProcessHeavyTests {
    /// `agenthost serve --workers 2` through the real binary: crashes, the watchdog, signals, merged admin routes.
    @Suite("Worker processes")
    struct WorkerSupervisionTests {
        @Test func aCrashingPluginTakesOnlyItsWorkerWhichIsRespawnedWhileTheOtherServesOn() async throws {
            let workers = try await WorkerServer.start(fixtures: ["crash_on_message"])
            let server = workers.server
            #expect(server.listeningLine == "agenthost listening on ws://127.0.0.1:\(server.port)")
            let echoes = try await workers.socketsOnEveryWorker(path: "/echo")
            try #require(echoes.count == 2, "every echo socket landed on one worker: \(echoes.keys)")
            for client in echoes.values.joined() { #expect(try await WorkerServer.echoes(client, "before")) }

            let crasher = try await RawWebSocketClient.connect(port: server.port, path: "/crash")
            let victim = try #require(WorkerServer.workerPid(of: crasher))
            #expect(try await WorkerServer.echoes(crasher, "still fine"))
            try await crasher.sendText("crash")

            #expect(await workers.waitForLog("worker died"), "\(server.logText)")
            let log = server.logText
            #expect(log.contains("killed by SIGSEGV (signal 11) while running plugin crasher callback on_message"), "\(log)")
            #expect(log.contains("pid=\(victim)"), "\(log)")
            #expect(await crasher.waitForDisconnect())

            // The other worker's sockets never noticed; the victim's sockets are gone.
            for (pid, clients) in echoes {
                for client in clients {
                    if pid == victim {
                        #expect(await client.waitForDisconnect())
                    } else {
                        #expect(try await WorkerServer.echoes(client, "after the crash"))
                    }
                }
            }

            // The slot is refilled (ready lines: two at start, one for the replacement) and new connections work,
            // on the replacement too.
            #expect(await workers.waitForLog("worker ready", count: 3), "\(server.logText)")
            let after = try await workers.socketsOnEveryWorker(path: "/echo")
            #expect(after.count == 2)
            #expect(after[victim] == nil)
            for client in after.values.joined() { #expect(try await WorkerServer.echoes(client, "new")) }
            let health = try await workers.health()
            #expect(health["status"] as? String == "ok", "\(health)")
            let rows = try #require(health["workers"] as? [[String: Any]])
            #expect(rows.count == 2)
            #expect(rows.map { $0["restarts"] as? Int ?? -1 }.sorted() == [0, 1], "\(rows)")
            #expect(rows.contains { ($0["last_exit"] as? String)?.contains("SIGSEGV") == true }, "\(rows)")

            server.signal(SIGTERM)
            let (status, finalLog) = try await server.waitForExit()
            #expect(status == 0, "\(finalLog)")
        }

        @Test func theWatchdogKillsAWorkerWhoseCallbackBlocksItsLoopButNotASlowOne() async throws {
            let workers = try await WorkerServer.start(fixtures: ["stuck_callback", "slow_callback"],
                                                       config: #"{"watchdog_ms": 1000}"#)
            let server = workers.server
            // 80 ms callbacks, ten in a row: slow (logged), never stuck.
            let slow = try await RawWebSocketClient.connect(port: server.port, path: "/slow")
            for round in 0..<10 { #expect(try await WorkerServer.echoes(slow, "slow \(round)")) }

            let stuck = try await RawWebSocketClient.connect(port: server.port, path: "/stuck")
            let victim = try #require(WorkerServer.workerPid(of: stuck))
            try await stuck.sendText("block")
            #expect(await workers.waitForLog("worker died", seconds: 15), "\(server.logText)")
            let log = server.logText
            #expect(log.contains("watchdog: a plugin callback blocked an event loop past the limit"), "\(log)")
            #expect(log.contains("killed by the watchdog: plugin stuck callback on_message blocked its event loop"), "\(log)")
            #expect(log.contains("pid=\(victim)"))
            #expect(!log.contains("plugin slow callback"), "\(log)")
            #expect(await stuck.waitForDisconnect())
            #expect(await workers.waitForLog("worker ready", count: 3), "\(server.logText)")
            let fresh = try await RawWebSocketClient.connect(port: server.port, path: "/stuck")
            #expect(try await WorkerServer.echoes(fresh, "unblocked"))
            server.signal(SIGTERM)
            #expect(try await server.waitForExit().status == 0)
        }

        @Test func sigtermDrainsEveryWorkerAndExitsZero() async throws {
            let workers = try await WorkerServer.start()
            let server = workers.server
            let echoes = try await workers.socketsOnEveryWorker(path: "/echo")
            try #require(echoes.count == 2)
            let pids = Array(echoes.keys)
            server.signal(SIGTERM)
            for client in echoes.values.joined() {
                #expect(try await withTimeout { try await client.readMessageOrClose() }.closeCode == 1001)
                try await client.sendClose(code: 1001)
            }
            let (status, log) = try await server.waitForExit()
            #expect(status == 0, "\(log)")
            #expect(log.components(separatedBy: "worker stopped").count - 1 == 2, "\(log)")
            for pid in pids { #expect(await eventually { WorkerServer.isGone(pid) }) }
        }

        @Test func sighupReloadsThePluginsOfEveryWorker() async throws {
            let directory = try PluginFixtures.makeDirectory()
            try await PluginFixtures.compileVersionedEcho(tag: "v1", into: directory, as: "versioned.so")
            let server = try await ServerProcess.start(arguments: ["--plugins", directory, "--workers", "2",
                                                                   "--event-loops", "1"])
            var listing = try await server.plugins()
            #expect(listing.count == 2, "one generation per worker: \(listing)")
            try await HotReloadTests.deploy(tag: "v2", into: directory)
            server.signal(SIGHUP)
            let reloaded = await eventually(seconds: 15) {
                // eventually() takes a synchronous condition: read the log, where each worker says it reloaded.
                server.logText.components(separatedBy: "reloading plugins").count - 1 >= 2
            }
            #expect(reloaded, "\(server.logText)")
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline {
                listing = try await server.plugins()
                if listing.filter({ $0.state == "serving" && $0.version == "v2" }).count == 2 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(listing.filter { $0.state == "serving" && $0.version == "v2" }.count == 2, "\(listing)")
            server.signal(SIGTERM)
            #expect(try await server.waitForExit().status == 0)
        }

        /// A worker started again after a crash serves what its supervisor accepted: not a file the last SIGHUP
        /// refused (it would not start: a crash loop), and not a restart-only change (its siblings run without it).
        @Test func aRespawnedWorkerServesTheAcceptedConfigNotTheFileOnDisk() async throws {
            let directory = try PluginFixtures.makeDirectory()
            try await PluginFixtures.compileEcho(into: directory)
            try await PluginFixtures.compileFixture("crash_on_message", into: directory)
            let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
            func write(_ json: String) throws { try Data(json.utf8).write(to: URL(fileURLWithPath: config)) }
            try write(#"{"websocket": {"max_message_size": 4096}}"#)
            let server = try await ServerProcess.start(arguments: [
                "--plugins", directory, "--workers", "2", "--event-loops", "1", "--config", config,
            ], environment: ["SWIFT_BACKTRACE": "enable=no"])
            let workers = WorkerServer(server: server, directory: directory)

            // Accepted: a reloadable change, and a restart-only one that is named and kept.
            try write(#"{"log_level": "debug", "websocket": {"max_message_size": 1000}}"#)
            server.signal(SIGHUP)
            #expect(await workers.waitForLog("configuration accepted"), "\(server.logText)")
            #expect(await workers.waitForLog("configuration reloaded", count: 2), "\(server.logText)")
            #expect(server.logText.contains("settings=log_level"), "\(server.logText)")
            // Refused, once, by the supervisor: the file on disk now could not start a worker.
            try write(#"{"websocket": {"max_message_size": 1000}, "bogus": 1}"#)
            server.signal(SIGHUP)
            #expect(await workers.waitForLog("configuration reload refused"), "\(server.logText)")
            #expect(server.logText.contains("config file \(config): unknown key(s): bogus"), "\(server.logText)")

            let crasher = try await RawWebSocketClient.connect(port: server.port, path: "/crash")
            // A /tmp cleaner removes the copies workers read: the supervisor writes them again before a start.
            let victim = try #require(WorkerServer.workerPid(of: crasher))
            let environment = try String(contentsOfFile: "/proc/\(victim)/environ", encoding: .utf8)
            let privateDirectory = try #require(environment.split(separator: "\0")
                .first { $0.hasPrefix("AGENTHOST_WORKER_DIR=") }?.dropFirst("AGENTHOST_WORKER_DIR=".count))
            for name in ["config.json", "config-started.json"] {
                try FileManager.default.removeItem(atPath: "\(privateDirectory)/\(name)")
            }
            try await crasher.sendText("crash")
            #expect(await workers.waitForLog("worker died"), "\(server.logText)")
            #expect(await workers.waitForLog("worker ready", count: 3), "\(server.logText)")
            let sockets = try await workers.socketsOnEveryWorker(path: "/echo")
            #expect(sockets.count == 2)
            for client in sockets.values.joined() {
                #expect(try await WorkerServer.echoes(client, String(repeating: "a", count: 500)))
                try await client.sendText(String(repeating: "b", count: 1500))  // over the accepted 1000
                #expect(try await withTimeout { try await client.readMessageOrClose() }.closeCode == 1009)
            }
            // No worker, the replacement included, logs at debug: log_level waits for a restart.
            #expect(!server.logText.contains(" debug "), "\(server.logText)")
            #expect(!server.logText.contains("exited with status 1"), "\(server.logText)")

            server.signal(SIGTERM)
            #expect(try await server.waitForExit().status == 0)
        }

        @Test func adminRoutesAnswerForEveryWorker() async throws {
            let workers = try await WorkerServer.start()
            let server = workers.server
            let (status, body) = try await server.get("/plugins", headers: [ServerProcess.adminHeader])
            #expect(status == 200)
            let plugins = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            let entries = try #require(plugins["plugins"] as? [[String: Any]])
            #expect(Set(entries.compactMap { $0["worker"] as? Int }) == [0, 1], "\(body)")

            let (metricsStatus, metrics) = try await server.get("/metrics", headers: [ServerProcess.adminHeader])
            #expect(metricsStatus == 200)
            #expect(metrics.contains(#"agenthost_worker_up{worker="0"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"agenthost_worker_up{worker="1"} 1"#), "\(metrics)")

            let health = try await workers.health()
            #expect(health["status"] as? String == "ok")
            let rows = try #require(health["workers"] as? [[String: Any]])
            let pids = rows.compactMap { $0["pid"] as? Int }
            #expect(pids.count == 2 && Set(pids).count == 2, "\(rows)")
            #expect(rows.allSatisfy { $0["state"] as? String == "serving" }, "\(rows)")
            // Plain clients still get the public probe only.
            #expect(try await server.get("/health").status == 403)
            server.signal(SIGTERM)
            #expect(try await server.waitForExit().status == 0)
        }

        @Test func oneWorkerIsTheSingleProcessItself() async throws {
            let directory = try PluginFixtures.makeDirectory()
            try await PluginFixtures.compileEcho(into: directory)
            let server = try await ServerProcess.start(arguments: ["--plugins", directory, "--workers", "1"])
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            #expect(WorkerServer.workerPid(of: client) == nil)
            #expect(try await WorkerServer.echoes(client, "one"))
            let (status, body) = try await server.get("/health", headers: [ServerProcess.adminHeader])
            #expect(status == 200)
            let health = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            // The process we started serves: no supervisor in between.
            #expect(health["pid"] as? Int == Int(server.process.processIdentifier), "\(body)")
            #expect(health["open_websockets"] as? Int == 1)
            #expect(!server.logText.contains("supervising workers"))
            server.signal(SIGTERM)
            #expect(try await server.waitForExit().status == 0)
        }

        @Test func aSecondSupervisorCannotShareThePort() async throws {
            let workers = try await WorkerServer.start()
            let (status, log) = try await ServerProcess.runToExit(arguments: [
                "serve", "--listen", "127.0.0.1:\(workers.server.port)", "--workers", "2",
            ])
            #expect(status != 0)
            #expect(log.contains("cannot listen on 127.0.0.1:\(workers.server.port): Address already in use"), "\(log)")
            workers.server.signal(SIGTERM)
            #expect(try await workers.server.waitForExit().status == 0)
        }

        @Test func workersExitWhenTheirSupervisorIsKilled() async throws {
            let workers = try await WorkerServer.start()
            let server = workers.server
            let rows = try #require(try await workers.health()["workers"] as? [[String: Any]])
            let pids = rows.compactMap { ($0["pid"] as? Int).map(Int32.init) }
            #expect(pids.count == 2)
            server.signal(SIGKILL)
            _ = try await server.waitForExit()
            for pid in pids { #expect(await eventually(seconds: 20) { WorkerServer.isGone(pid) }, "worker \(pid) orphaned") }
        }
    }
}
