import Foundation
import Glibc
import Testing

extension ProcessHeavyTests {
    /// Runs on the host's run log, through the real binary: a client resumes a run on the next plugin generation
    /// after a reload, after `kill -9` and a restart on the same state dir, and on AutoGen Studio's URL; `stop` and
    /// `input_response` sent to the new generation reach the run the old one writes.
    @Suite("resume on the run log")
    struct RunLogResumeTests {
        /// Every frame of one run, once each and in order: seq 1, 2, 3, ... and exactly one terminal frame, last.
        static func expectEveryFrameOnce(_ frames: [AgentFrame], sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(frames.compactMap(\.seq) == Array(1...max(frames.count, 1)), "\(frames)", sourceLocation: sourceLocation)
            #expect(frames.filter(\.isTerminal).count == 1 && frames.last?.isTerminal == true, sourceLocation: sourceLocation)
        }

        /// Starts a native-agent run whose tokens are 20 ms apart, reads `count` frames and drops the socket: the
        /// generation then has no socket left, only the run (it must be kept for it: an attack found a reload ended
        /// such runs with "the run's writer went away" when an earlier version of this test kept a socket open).
        static func startAndDrop(port: Int, runID: String, count: Int) async throws -> [AgentFrame] {
            let client = try await AgentClient.connect(port: port, path: "/agents/native")
            try await client.send(["type": "start", "run_id": runID, "task": "count the words of this little task please"])
            var seen: [AgentFrame] = []
            while seen.count < count { seen.append(try await client.next()) }
            await client.close()
            return seen
        }

        @Test func aReloadMidRunWithTheSocketDroppedResumesOnTheNewGenerationWithEveryFrameOnce() async throws {
            let (server, plugins) = try await AgentServer.startWithPlugins(workers: 1, native: ["token_delay_ms": 20])
            try await withTimeout(seconds: 60) {
                let seen = try await Self.startAndDrop(port: server.port, runID: "reload-1", count: 4)
                let token = seen.first?.object["resume_token"] as? String ?? ""
                try await AgentServer.redeploy("libagenthost-native-agent.so", plugin: "native-agent", plugins: plugins,
                                               server: server)

                // A socket of the new generation: the run is the old one's, read from the log and followed live; the
                // answer to its input request goes to the old generation's writer as a signal.
                let client = try await AgentClient.connect(port: server.port, path: "/agents/native")
                try await client.send(["type": "resume", "run_id": "reload-1", "last_seq": seen.last?.seq ?? 0,
                                       "resume_token": token])
                let rest = try await client.collect(runID: "reload-1", answer: "yes")
                let frames = seen + rest
                Self.expectEveryFrameOnce(frames)
                #expect(frames.last?.type == "result", "the old generation finished the run while draining")
                #expect(frames.contains { $0.type == "input_request" })
                await client.close()
            }
        }

        @Test func stopSentToTheNewGenerationStopsTheOldOnesRun() async throws {
            let (server, plugins) = try await AgentServer.startWithPlugins(workers: 1, native: ["token_delay_ms": 20])
            try await withTimeout(seconds: 60) {
                let seen = try await Self.startAndDrop(port: server.port, runID: "reload-2", count: 2)
                let token = seen.first?.object["resume_token"] as? String ?? ""
                try await AgentServer.redeploy("libagenthost-native-agent.so", plugin: "native-agent", plugins: plugins,
                                               server: server)
                let client = try await AgentClient.connect(port: server.port, path: "/agents/native")
                try await client.send(["type": "resume", "run_id": "reload-2", "last_seq": 2, "resume_token": token])
                var rest: [AgentFrame] = []
                while rest.last?.type != "input_request" { rest.append(try await client.next()) }
                try await client.send(["type": "stop", "run_id": "reload-2", "reason": "enough"])
                rest += try await client.collect(runID: "reload-2")
                let frames = seen + rest
                Self.expectEveryFrameOnce(frames)
                #expect(frames.last?.type == "completion" && frames.last?.status == "cancelled")
                #expect(frames.last?.object["stop_reason"] as? String == "enough")
                await client.close()
            }
        }

        /// The host's counter of entries its store took: what `kill -9` cannot lose any more.
        static func entriesStored(_ server: ServerProcess) async throws -> Int {
            let (_, body) = try await server.get("/metrics", headers: [ServerProcess.adminHeader])
            let line = body.split(separator: "\n").first { $0.hasPrefix("agenthost_runlog_entries_written_total") }
            return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { Int($0) } ?? 0
        }

        @Test func afterKillNineAndARestartAFinishedRunResumesByteForByteAndALiveOneEnds() async throws {
            let state = try PluginFixtures.makeDirectory() + "/state"
            let (server, plugins) = try await AgentServer.startWithPlugins(workers: 1, arguments: ["--state-dir", state])
            let (finished, live, liveSeen) = try await withTimeout(seconds: 60) {
                let client = try await AgentClient.connect(port: server.port, path: "/agents/native")
                try await client.send(["type": "start", "run_id": "done-1", "task": "finish me"])
                let finished = try await client.collect(runID: "done-1", answer: "yes")
                try await client.send(["type": "start", "run_id": "live-1", "task": "leave me waiting"])
                var live: [AgentFrame] = []
                while live.last?.type != "input_request" { live.append(try await client.next()) }
                // Written behind: wait until the store has every frame so far, then kill without warning.
                let frames = finished.count + live.count
                #expect(await eventuallyAsync(seconds: 20) { (try? await Self.entriesStored(server)) ?? 0 >= frames })
                return (finished, live.first, live.count)
            }
            server.signal(SIGKILL)
            _ = try await server.waitForExit()

            let again = try await AgentServer.restart(plugins: plugins, arguments: ["--state-dir", state])
            try await withTimeout(seconds: 60) {
                let client = try await AgentClient.connect(port: again.port, path: "/agents/native")
                try await client.send(["type": "resume", "run_id": "done-1", "last_seq": 0,
                                       "resume_token": finished.first?.object["resume_token"] ?? ""])
                let replay = try await client.collect(runID: "done-1")
                #expect(replay.map(\.text) == finished.map(\.text), "byte for byte")

                try await client.send(["type": "resume", "run_id": "live-1", "last_seq": liveSeen,
                                       "resume_token": live?.object["resume_token"] ?? ""])
                // The host numbered the terminal frame past anything the killed server may have sent unstored: the
                // client is told of the gap, then gets the terminal frame.
                let gap = try await client.next()
                #expect(gap.type == "error" && gap.object["code"] as? String == "resume_gap", "\(gap.text)")
                let end = try await client.next()
                #expect(end.type == "completion" && end.status == "error", "\(end.text)")
                #expect(end.seq == liveSeen + 1 + (1 << 20))
                #expect(gap.object["first_seq"] as? Int == end.seq)
                await client.close()
            }
        }

        /// AutoGen Studio's URL names the run; the socket that resumes it names the same URL.
        @Test func aRunResumesOnStudiosRunURL() async throws {
            let server = try await AgentServer.start(workers: 1)
            try await withTimeout(seconds: 60) {
                let first = try await AgentClient.connect(port: server.port, path: "/api/ws/runs/4242")
                try await first.send(["type": "start", "task": "Draft a plan for streaming."])
                var seen: [AgentFrame] = []
                while seen.last?.type != "input_request" { seen.append(try await first.next()) }
                #expect(seen.first?.runID == "4242")
                await first.close()

                let second = try await AgentClient.connect(port: server.port, path: "/api/ws/runs/4242")
                try await second.send(["type": "resume", "run_id": "4242", "last_seq": seen.count - 1,
                                       "resume_token": seen.first?.object["resume_token"] ?? ""])
                let rest = try await second.collect(runID: "4242", answer: "Looks good. APPROVE")
                Self.expectEveryFrameOnce(Array(seen.dropLast()) + rest)
                #expect(rest.first?.type == "input_request", "the frame after last_seq, again")
                #expect(rest.last?.type == "result")
                await second.close()

                // Another run's URL does not reach it.
                let other = try await AgentClient.connect(port: server.port, path: "/api/ws/runs/9999")
                try await other.send(["type": "resume", "run_id": "4242", "last_seq": 0,
                                      "resume_token": seen.first?.object["resume_token"] ?? ""])
                #expect(try await other.next().object["code"] as? String == "unknown_run")
                await other.close()
            }
        }
    }
}
