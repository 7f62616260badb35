import Foundation
import Testing

/// A client written for AutoGen Studio 0.4.2.2 (its URL, its `start`/`stop`/`input_response`/`ping` frames, no
/// run ids, a team_config in every start) works against autogen-team unchanged.
@Suite("AutoGen Studio clients", .serialized)
struct StudioClientTests {
    /// What Studio's own UI sends: the run id in the path, the team in `start` (ignored here unless the operator
    /// allows client teams: the route's configured team runs).
    static var studioStart: [String: Any] { [
        "type": "start", "task": "Draft a plan for streaming.", "files": [],
        "team_config": ["provider": "autogen_agentchat.teams.RoundRobinGroupChat", "config": [:]],
    ] }

    @Test func inputRoundTripAsStudioDoesIt() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/api/ws/runs/42")
            try await client.send(["type": "ping"])
            #expect(try await client.next().type == "pong")
            try await client.send(Self.studioStart)
            var frames: [AgentFrame] = []
            while frames.last?.isTerminal != true {
                let frame = try await client.next()
                frames.append(frame)
                // Studio's input_response names neither the run nor the request.
                if frame.type == "input_request" {
                    try await client.send(["type": "input_response", "response": "Looks good. APPROVE"])
                }
            }
            #expect(frames.allSatisfy { $0.runID == "42" })
            try AutoGenCaptures.expectMatches(frames, capture: "team_user_proxy")
            // Everything Studio's real route sent (studio_e2e_input), we send too, with Studio's fields.
            let studio = try AutoGenCaptures.lines("studio_e2e_input.jsonl")
            #expect(Set(studio.map { $0["type"] as? String ?? "" }).isSubset(of: ["system"] + frames.map(\.type)))
            await client.close()
        }
    }

    @Test func stopWhileAwaitingInputEndsWithCompletionAndARealClose() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/api/ws/runs/43")
            try await client.send(Self.studioStart)
            while try await client.next().type != "input_request" {}
            try await client.send(["type": "stop", "reason": "Cancelled by user", "code": 1000])
            let end = try await client.next()
            #expect(end.type == "completion" && end.status == "cancelled")
            let studio = try #require(try AutoGenCaptures.lines("studio_e2e_stop.jsonl").last)
            #expect(Set(end.object.keys).isSuperset(of: studio.keys))
            let taskResult = end.data?["task_result"] as? [String: Any]
            #expect(taskResult?["stop_reason"] as? String == "Cancelled by user")
            // Studio dropped the TCP connection here (1006). We keep it, and close it with a close handshake.
            try await client.raw.sendClose(code: 1000)
            let close = try await client.raw.readMessageOrClose()
            #expect(close.opcode == 0x8 && close.closeCode == 1000)
        }
    }

    @Test func malformedFramesGetStudiosErrorFrames() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/api/ws/runs/44")
            try await client.raw.sendText("this is not json")
            try await client.send(["type": "start"])
            let studio = try AutoGenCaptures.lines("studio_e2e_errors.jsonl").filter { $0["type"] as? String == "error" }
            for expected in studio {
                let frame = try await client.next()
                #expect(frame.type == "error")
                #expect(Set(frame.object.keys).isSuperset(of: expected.keys))
                #expect((frame.object["error"] as? String ?? "").hasPrefix(expected["error"] as? String ?? "?"))
            }
            await client.close()
        }
    }
}
