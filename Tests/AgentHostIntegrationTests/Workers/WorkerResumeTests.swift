import Foundation
import Testing

extension ProcessHeavyTests {
    /// `--workers 2 --state-dir`: a run started on one worker process is resumed from a socket on the other. The
    /// resuming worker reads the shared run log (the entries the first wrote behind, then its live tail), and the
    /// client's `input_response` reaches the writer in the other process as a signal through the store.
    @Suite("Resume across worker processes")
    struct WorkerResumeTests {
        @Test func aRunStartedOnOneWorkerResumesOnTheOtherWithEveryFrameOnce() async throws {
            let stateDir = try PluginFixtures.makeDirectory() + "/state"
            let server = try await AgentServer.start(workers: 1, native: ["token_delay_ms": 20],
                                                     arguments: ["--workers", "2", "--event-loops", "1",
                                                                 "--state-dir", stateDir])
            try await withTimeout(seconds: 60) {
                let first = try await RawWebSocketClient.connect(port: server.port, path: "/agents/native")
                let starter = try #require(WorkerServer.workerPid(of: first), "\(first.handshakeResponse)")
                let client = AgentClient(raw: first)
                #expect(try await client.next().type == "system")
                try await client.send(["type": "start", "run_id": "across", "task": "one two three four five six seven"])
                let seen = [try await client.next(), try await client.next()]
                let token = try #require(seen[0].object["resume_token"] as? String)
                await client.close()

                // The kernel picks the worker that accepts a socket: open until one lands on the other worker.
                var other: AgentClient?
                for _ in 0..<60 {
                    let raw = try await RawWebSocketClient.connect(port: server.port, path: "/agents/native")
                    if WorkerServer.workerPid(of: raw) != starter {
                        other = AgentClient(raw: raw)
                        break
                    }
                    await raw.close()
                }
                let resumed = try #require(other, "no socket landed on the other worker")
                #expect(try await resumed.next().type == "system")
                // A run reaches the store the other worker reads within one write-behind cycle (50 ms) of its
                // start (README, "What survives what"); until then that worker answers unknown_run. Asked again.
                var rest: [AgentFrame] = []
                for attempt in 1...20 {
                    try await resumed.send(["type": "resume", "run_id": "across", "last_seq": 2, "resume_token": token])
                    do {
                        rest = try await resumed.collect(runID: "across", answer: "yes")
                        break
                    } catch let refused as AgentClient.Refused
                        where refused.frame.object["code"] as? String == "unknown_run" && attempt < 20
                    {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                let frames = seen + rest
                #expect(frames.compactMap(\.seq) == Array(1...frames.count), "\(frames.map(\.text))")
                #expect(frames.contains { $0.type == "input_request" }, "the answer crossed to the writer's process")
                #expect(frames.last?.type == "result", "\(frames.last?.text ?? "")")
                await resumed.close()
            }
            server.signal(SIGTERM)
            _ = try await server.waitForExit()
        }
    }
}
