import Foundation
import Testing

/// F7 end to end: runs whose frames are over the host's outbound high watermark (1 MiB), one after another on one
/// socket. Each large frame's `send` returns BACKPRESSURE and the socket drains while it returns; with the lost
/// wakeup (see WritableGateTests for the deterministic proof) a socket went silent within 1-6 such runs.
@Suite("agent backpressure", .serialized)
struct AgentBackpressureTests {
    @Test func largeRunsOneAfterAnotherAllArrive() async throws {
        // native-agent's result quotes the task twice (the user's message and the tool call's arguments). Frames go
        // through the host's run log now: its largest entry (1 MiB by default) is raised for these 1.4 MB results.
        let server = try await AgentServer.start(workers: 1, native: ["max_task_bytes": 1 << 20],
                                                 serverConfig: ["run_log": ["max_entry_bytes": 8 << 20]])
        try await withTimeout(seconds: 60) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/native")
            let task = String(repeating: "lorem ", count: 110_000)  // 660 KB
            for index in 0..<8 {
                try await client.send(["type": "start", "run_id": "large-\(index)", "task": task])
                let frames = try await client.collect(runID: "large-\(index)", answer: "yes")
                #expect(frames.last?.type == "result")
                #expect(frames.last.map { $0.text.utf8.count > 1 << 20 } == true, "the result is over 1 MiB")
            }
            await client.close()
        }
    }
}
