import Foundation
import Testing

/// The protocol's rules, on the native agent (no Python involved): several runs per socket keyed by run_id,
/// refusals as error frames with documented codes, real close frames for what cannot go on.
@Suite("agent protocol", .serialized)
struct AgentProtocolTests {
    @Test func severalRunsShareOneSocketKeyedByRunID() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await client.send(["type": "start", "run_id": "a", "task": "first task here"])
            try await client.send(["type": "start", "run_id": "b", "task": "second task"])
            var byRun: [String: [AgentFrame]] = [:]
            var requests: [String: String] = [:]
            while byRun.values.filter({ $0.last?.isTerminal == true }).count < 2 {
                let frame = try await client.next()
                byRun[frame.runID ?? "?", default: []].append(frame)
                if frame.type == "input_request" { requests[frame.runID ?? "?"] = frame.object["request_id"] as? String }
                // Answer both only once both wait: each answer must reach its own run.
                if requests.count == 2 {
                    for (run, request) in requests {
                        try await client.send(["type": "input_response", "run_id": run, "request_id": request,
                                               "response": "answer for \(run)"])
                    }
                    requests = ["done": ""]
                }
            }
            for run in ["a", "b"] {
                let frames = try #require(byRun[run])
                #expect(frames.compactMap(\.seq) == Array(1...frames.count))
                #expect(frames.last?.type == "result")
                let answer = frames.first { $0.shape == "message:TextMessage" && $0.data?["source"] as? String == "user"
                    && ($0.data?["content"] as? String ?? "").hasPrefix("answer") }
                #expect(answer?.data?["content"] as? String == "answer for \(run)")
            }
            await client.close()
        }
    }

    @Test func refusalsAreErrorFramesWithDocumentedCodes() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/native")
            func expectError(_ frame: [String: Any], _ code: String) async throws {
                try await client.send(frame)
                let reply = try await client.next()
                #expect(reply.type == "error" && reply.object["code"] as? String == code, "\(reply)")
            }
            try await expectError(["type": "input_response", "response": "nobody asked"], "not_waiting_for_input")
            try await expectError(["type": "stop"], "unknown_run")
            try await expectError(["type": "launch"], "unknown_type")
            try await expectError(["task": "no type"], "invalid_frame")
            try await expectError(["type": "start", "task": 42], "invalid_frame")
            try await expectError(["type": "start", "run_id": "no spaces allowed", "task": "x"], "invalid_frame")
            try await expectError(["type": "resume", "run_id": "never-started", "last_seq": 0], "unknown_run")
            try await expectError(["type": "resume", "run_id": "never-started", "last_seq": -1], "invalid_frame")
            try await expectError(["type": "resume", "run_id": "never-started", "last_seq": true], "invalid_frame")

            // A second start for a live run is refused; the run itself is unharmed.
            try await client.send(["type": "start", "run_id": "live", "task": "one two"])
            while try await client.next().type != "input_request" {}
            try await expectError(["type": "start", "run_id": "live", "task": "again"], "run_exists")
            try await client.send(["type": "input_response", "run_id": "live", "response": "fine"])
            let rest = try await client.collect(runID: "live")
            #expect(rest.last?.type == "result")
            await client.close()
        }
    }

    @Test func binaryFramesAndPersistentGarbageCloseTheSocketWithRealCloseFrames() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let binary = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await binary.raw.sendBinary([1, 2, 3])
            let unsupported = try await binary.raw.readMessageOrClose()
            #expect(unsupported.opcode == 0x8 && unsupported.closeCode == 1003)

            let garbage = try await AgentClient.connect(port: server.port, path: "/agents/native")
            var closeCode: UInt16?
            for _ in 0..<40 where closeCode == nil {
                try await garbage.raw.sendText("{")
                let frame = try await garbage.raw.readMessageOrClose()
                if frame.opcode == 0x8 { closeCode = frame.closeCode }
            }
            #expect(closeCode == 1008)

            // Everyone else is still served.
            let bystander = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await bystander.send(["type": "ping"])
            #expect(try await bystander.next().type == "pong")
            await bystander.close()
        }
    }

    @Test func aPatternRouteWithoutATeamIsRefused() async throws {
        let server = try await AgentServer.start()
        // The host routes /agents/* to autogen-team, which refuses a path without a team: close 1011, no hello.
        #expect(try await AgentClient.refusal(port: server.port, path: "/agents/no-such-team") == .close(1011))
        // The refusal hurt nobody.
        let client = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
        try await client.send(["type": "ping"])
        #expect(try await client.next().type == "pong")
        await client.close()
    }

    /// A typo in an agent route's config refuses the plugin with the key named; the others still load.
    @Test func aMistypedConfigKeyRefusesThePluginNamingTheKey() async throws {
        let server = try await AgentServer.start(native: ["token_delay_msec": 5])
        // Without native-agent, /agents/native falls to autogen-team's /agents/* pattern, which has no team there.
        #expect(try await AgentClient.refusal(port: server.port, path: "/agents/native") == .close(1011))
        #expect(server.logText.contains("unknown config key token_delay_msec"))
        let client = try await AgentClient.connect(port: server.port, path: "/agents/c")
        try await client.send(["type": "ping"])
        #expect(try await client.next().type == "pong")
        await client.close()
    }
}
