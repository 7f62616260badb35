import Foundation
import Testing

/// autogen-team serving real AutoGen teams (ReplayChatCompletionClient, offline) through the real server: every
/// stream has the structure of the capture made with AutoGen itself, plus the envelope.
@Suite("autogen-team", .serialized)
struct AutoGenTeamTests {
    /// Runs `task` on /agents/<team> and returns the run's frames.
    func run(_ team: String, task: String, on server: ServerProcess, answer: String? = nil) async throws -> [AgentFrame] {
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/\(team)")
            defer { Task { await client.close() } }
            try await client.send(["type": "start", "task": task])
            return try await client.collect(answer: answer)
        }
    }

    @Test func streamedAnswerMatchesTheCapture() async throws {
        let server = try await AgentServer.start()
        let frames = try await self.run("assistant_streaming", task: "What is the capital of France?", on: server)
        try AutoGenCaptures.expectMatches(frames, capture: "agent_streaming")
        // Chunks carry the id of the message they build, as AutoGen's do.
        let final = frames.last { $0.shape == "message:TextMessage" }?.data?["id"] as? String
        #expect(frames.filter { $0.type == "message_chunk" }.allSatisfy { $0.data?["full_message_id"] as? String == final })
    }

    @Test func toolCallMatchesTheCaptureIncludingEventsStudioDrops() async throws {
        let server = try await AgentServer.start()
        let frames = try await self.run("assistant_tool_call", task: "What's the weather in Paris?", on: server)
        try AutoGenCaptures.expectMatches(frames, capture: "agent_tool_call")
        #expect(frames.contains { $0.shape == "message:ThoughtEvent" })
        #expect(frames.contains { $0.shape == "message:ToolCallSummaryMessage" })

        let reflect = try await self.run("assistant_tool_reflect", task: "What's the weather in Paris?", on: server)
        try AutoGenCaptures.expectMatches(reflect, capture: "agent_tool_reflect")
    }

    @Test func roundRobinTeamMatchesTheCapture() async throws {
        let server = try await AgentServer.start()
        let frames = try await self.run("round_robin", task: "Write a poem about WebSockets.", on: server)
        try AutoGenCaptures.expectMatches(frames, capture: "team_round_robin")
    }

    @Test func handoffMatchesTheCapture() async throws {
        let server = try await AgentServer.start()
        let frames = try await self.run("swarm_handoff", task: "Change my flight.", on: server)
        try AutoGenCaptures.expectMatches(frames, capture: "swarm_handoff")
    }

    /// Unlike Studio (whose capture shows input_request overtaking queued chunks), the request comes in stream
    /// order, after every chunk before it, and carries AutoGen's request_id.
    @Test func userInputRoundTripMatchesTheCaptureInStreamOrder() async throws {
        let server = try await AgentServer.start()
        let frames = try await self.run("user_proxy", task: "Draft a plan for streaming.", on: server,
                                        answer: "Looks good. APPROVE")
        try AutoGenCaptures.expectMatches(frames, capture: "team_user_proxy")
        let request = try #require(frames.first { $0.type == "input_request" })
        #expect(request.object["request_id"] as? String == request.data?["request_id"] as? String)
        #expect(request.object["prompt"] as? String == "Enter your response: ")
        let reply = frames.last { $0.shape == "message:TextMessage" }
        #expect(reply?.data?["content"] as? String == "Looks good. APPROVE")
    }

    @Test func stopMidStreamEndsTheRunWithOneCancelledCompletion() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/slow")
            try await client.send(["type": "start", "task": "Write a poem about WebSockets."])
            let frames = try await client.collect(stopAfterChunks: 3)
            // The frames before the stop are a prefix of the stream; the end is Studio's completion frame.
            #expect(frames.first?.shape == "message:TextMessage")
            #expect(frames.filter { $0.type == "message_chunk" }.count >= 3)
            let end = try #require(frames.last)
            #expect(end.type == "completion" && end.status == "cancelled")
            let studio = try #require(try AutoGenCaptures.lines("team_cancelled.studio.jsonl").last)
            #expect(Set(end.object.keys).isSuperset(of: studio.keys))
            #expect(frames.filter(\.isTerminal).count == 1)
            // The socket stays open (Studio drops it): the next frame is answered.
            try await client.send(["type": "ping"])
            let answer = try await client.next()
            #expect(answer.type == "pong", "after the stop: \(answer.object)")
            await client.close()
        }
    }

    @Test func aKilledWorkerEndsItsRunWithAnErrorAndTheNextRunWorks() async throws {
        let server = try await AgentServer.start(workers: 1)
        let crashed = try await self.run("crash", task: "go", on: server)
        let end = try #require(crashed.last)
        #expect(end.type == "completion" && end.status == "error")
        #expect((end.object["error"] as? String ?? "").contains("exited"))
        // The pool's only worker was replaced: the next run works.
        let next = try await self.run("round_robin", task: "Write a poem about WebSockets.", on: server)
        try AutoGenCaptures.expectMatches(next, capture: "team_round_robin")
        #expect(server.logText.contains("starting a replacement"))
    }

    @Test func aHungWorkerIsKilledAndReplaced() async throws {
        // 3 s: a worker busy with its first run on a starved machine went a second without answering pings.
        let server = try await AgentServer.start(workers: 1, autogen: ["hang_timeout_ms": 3000])
        let hung = try await self.run("hang", task: "go", on: server)
        let end = try #require(hung.last)
        #expect(end.type == "completion" && end.status == "error")
        #expect((end.object["error"] as? String ?? "").contains("stopped answering"))
        let next = try await self.run("assistant_streaming", task: "What is the capital of France?", on: server)
        try AutoGenCaptures.expectMatches(next, capture: "agent_streaming")
    }

    @Test func anUnansweredInputRequestTimesOut() async throws {
        let server = try await AgentServer.start(autogen: ["input_timeout_ms": 300])
        let frames = try await self.run("user_proxy", task: "Draft a plan for streaming.", on: server)
        let end = try #require(frames.last)
        #expect(end.type == "completion" && end.status == "timeout")
        #expect(frames.filter(\.isTerminal).count == 1)
    }

    @Test func fiftyConcurrentRunsAllComplete() async throws {
        let server = try await AgentServer.start()
        let results = try await withThrowingTaskGroup(of: [AgentFrame].self) { group in
            for _ in 0..<50 {
                group.addTask { try await self.run("round_robin", task: "Write a poem about WebSockets.", on: server) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 50)
        for frames in results { try AutoGenCaptures.expectMatches(frames, capture: "team_round_robin") }
        #expect(Set(results.compactMap { $0.first?.runID }).count == 50)
    }

    /// `team_config` from the client is ignored by default (Studio test) and used only when the operator allows it.
    @Test func aClientTeamConfigRunsOnlyWhenTheOperatorAllowsIt() async throws {
        let teamFile = try AgentServer.teams() + "/assistant_streaming.json"
        let team = try String(contentsOfFile: teamFile, encoding: .utf8)
        for allowed in [false, true] {
            let server = try await AgentServer.start(autogen: ["allow_client_team_config": allowed])
            let frames = try await withTimeout(seconds: 30) {
                let client = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
                defer { Task { await client.close() } }
                try await client.raw.sendText(#"{"type":"start","task":"What is the capital of France?","team_config":\#(team)}"#)
                return try await client.collect()
            }
            // Allowed: the client's single streaming assistant ran. Not allowed: the route's round-robin team.
            try AutoGenCaptures.expectMatches(frames, capture: allowed ? "agent_streaming" : "team_round_robin")
        }
    }

    /// A broken set-up (here: a "python" that exits at once) is refused at load with a clear message, without a
    /// respawn loop, and hurts nobody else.
    @Test func aBrokenPythonIsRefusedAtLoad() async throws {
        let server = try await AgentServer.start(workers: 1, autogen: ["python": "/bin/false", "start_timeout_ms": 2000])
        #expect(try await AgentClient.refusal(port: server.port, path: "/agents/round_robin") == .http(404))
        let log = server.logText
        #expect(log.contains("no AutoGen worker became ready"))
        #expect(log.components(separatedBy: "exited before it was ready").count - 1 < 10)
        // The native agent next door is served.
        let native = try await AgentClient.connect(port: server.port, path: "/agents/native")
        try await native.send(["type": "ping"])
        #expect(try await native.next().type == "pong")
        await native.close()
    }

    /// A team AutoGen cannot load refuses the plugin at load, naming the route and AutoGen's reason.
    @Test func aTeamAutoGenCannotLoadRefusesThePluginNamingTheRoute() async throws {
        let bogus: [String: Any] = ["provider": "autogen_agentchat.teams.NoSuchTeam", "config": [:]]
        let server = try await AgentServer.start(autogen: ["routes": ["/agents/bogus": ["team": bogus]]])
        #expect(try await AgentClient.refusal(port: server.port, path: "/agents/bogus") == .http(404))
        #expect(server.logText.contains("route /agents/bogus: AutoGen cannot load its team"))
        #expect(try await AgentClient.refusal(port: server.port, path: "/agents/native") == .none)
    }
}
