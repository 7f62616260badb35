import Foundation
import Testing

/// The C agent (Plugins/c-agent, built on agenthost_agent.h): the same frames as AutoGen, from plain C.
@Suite("C agent", .serialized)
struct CAgentTests {
    @Test func streamedEchoMatchesTheStreamingCapture() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/c")
            // An echo agent: with the capture's answer as the task, the stream has the capture's shape.
            try await client.send(["type": "start", "task": "Paris is the capital of France."])
            let frames = try await client.collect()
            try AutoGenCaptures.expectMatches(frames, capture: "agent_streaming")
            let chunks = frames.filter { $0.type == "message_chunk" }.compactMap { $0.data?["content"] as? String }
            #expect(chunks.joined() == "Paris is the capital of France.")
            await client.close()
        }
    }

    @Test func stopMidStreamAndProtocolErrors() async throws {
        let server = try await AgentServer.start(cAgent: ["token_delay_ms": 100])
        try await withTimeout(seconds: 40) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/c")
            // 150 tokens, 100 ms apart: the stop after the 2nd lands mid-stream even when the test process is
            // starved for seconds (with 60 tokens 50 ms apart, a starved client read the 2nd chunk after the last).
            let task = (1...150).map { "word\($0)" }.joined(separator: " ")
            try await client.send(["type": "start", "run_id": "c-1", "task": task])
            let frames = try await client.collect(stopAfterChunks: 2)
            let end = try #require(frames.last)
            #expect(end.type == "completion" && end.status == "cancelled" && end.runID == "c-1")
            #expect(frames.filter { $0.type == "message_chunk" }.count < 150)
            #expect(frames.compactMap(\.seq) == Array(1...frames.count))

            for (text, code) in [("{not json", "invalid_json"), (#"{"type":"fly"}"#, "unknown_type"),
                                 (#"{"type":"start","task":{"content":"x"}}"#, "invalid_frame"),
                                 (#"{"type":"input_response","response":"x"}"#, "not_waiting_for_input")]
            {
                try await client.raw.sendText(text)
                let reply = try await client.next()
                #expect(reply.type == "error" && reply.object["code"] as? String == code, "\(text) -> \(reply)")
            }
            try await client.send(["type": "ping"])
            #expect(try await client.next().type == "pong")
            await client.close()
        }
    }

    /// The C agent's runs are in the run log: a client that drops its socket mid-run resumes it on a new one and
    /// gets every frame once (the rest of the reply is appended when the starter's socket closes).
    @Test func aRunResumesOnANewSocket() async throws {
        let server = try await AgentServer.start(cAgent: ["token_delay_ms": 50])
        try await withTimeout(seconds: 30) {
            let first = try await AgentClient.connect(port: server.port, path: "/agents/c")
            try await first.send(["type": "start", "run_id": "c-resume", "task": "one two three four five six"])
            let seen = [try await first.next(), try await first.next()]
            await first.close()
            let second = try await AgentClient.connect(port: server.port, path: "/agents/c")
            try await second.send(["type": "resume", "run_id": "c-resume", "last_seq": 2,
                                   "resume_token": seen[0].object["resume_token"] ?? ""])
            let frames = seen + (try await second.collect(runID: "c-resume"))
            #expect(frames.compactMap(\.seq) == Array(1...frames.count))
            #expect(frames.last?.type == "result")
            let chunks = frames.filter { $0.type == "message_chunk" }.compactMap { $0.data?["content"] as? String }
            #expect(chunks.joined() == "one two three four five six")
            await second.close()
            // Another client without the token finds nothing, and starting the same id starts its own run.
            let other = try await AgentClient.connect(port: server.port, path: "/agents/c")
            try await other.send(["type": "start", "run_id": "c-resume", "task": "again"])
            let own = try await other.next()
            #expect(own.type != "error" && own.seq == 1, "\(own)")
            #expect(own.object["resume_token"] as? String != seen[0].object["resume_token"] as? String)
            await other.close()
            let stranger = try await AgentClient.connect(port: server.port, path: "/agents/c")
            try await stranger.send(["type": "resume", "run_id": "c-resume", "last_seq": 0])
            #expect(try await stranger.next().object["code"] as? String == "unknown_run")
            await stranger.close()
        }
    }

    /// Run ids as the Swift SDK takes them (ClientFrame.runID): 1-128 of [A-Za-z0-9._:-], or a whole number as
    /// Studio sends it. Anything else is invalid_frame, and an over-long id is refused, never cut to 128 bytes.
    @Test func runIDsAreCheckedAsTheSwiftSDKChecksThem() async throws {
        let server = try await AgentServer.start(cAgent: ["token_delay_ms": 1])
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/c")
            let long = String(repeating: "x", count: 129)
            for text in [#"{"type":"start","run_id":"\#(long)","task":"hi"}"#,
                         #"{"type":"resume","run_id":"\#(long)","last_seq":0}"#,
                         #"{"type":"stop","run_id":"\#(long)"}"#,
                         #"{"type":"start","run_id":"a b","task":"hi"}"#,
                         #"{"type":"start","run_id":"","task":"hi"}"#,
                         #"{"type":"start","run_id":"ok\u0000","task":"hi"}"#,
                         #"{"type":"start","run_id":1.5,"task":"hi"}"#,
                         #"{"type":"start","run_id":1e3,"task":"hi"}"#,
                         #"{"type":"start","run_id":-5,"task":"hi"}"#,
                         #"{"type":"start","run_id":9007199254740992,"task":"hi"}"#,
                         #"{"type":"start","run_id":true,"task":"hi"}"#,
                         #"{"type":"ping","run_id":{"id":1}}"#,
                         #"{"type":"resume","last_seq":0}"#]
            {
                try await client.raw.sendText(text)
                let reply = try await client.next()
                #expect(reply.type == "error" && reply.object["code"] as? String == "invalid_frame",
                        "\(text) -> \(reply)")
                #expect(reply.runID == nil, "an id that is not one is not echoed")
            }
            // Nothing started under the id's first 128 bytes.
            try await client.send(["type": "resume", "run_id": String(long.prefix(128)), "last_seq": 0])
            #expect(try await client.next().object["code"] as? String == "unknown_run")
            // A 128-byte id and a numeric one (Studio's) start runs; the number is named by its digits.
            try await client.send(["type": "start", "run_id": String(long.prefix(128)), "task": "one"])
            #expect(try await client.collect(runID: String(long.prefix(128))).last?.type == "result")
            try await client.raw.sendText(#"{"type":"start","run_id":42,"task":"two"}"#)
            let frames = try await client.collect(runID: "42")
            #expect(frames.last?.type == "result" && frames.allSatisfy { $0.runID == "42" }, "\(frames)")
            await client.close()
        }
    }

    @Test func aBadTokenDelayRefusesTheCPluginWithItsReason() async throws {
        let server = try await AgentServer.start(cAgent: ["token_delay_ms": "fast"])
        #expect(try await AgentClient.refusal(port: server.port, path: "/agents/c") != .none)
        #expect(server.logText.contains("token_delay_ms must be a whole number of milliseconds"))
        #expect(try await AgentClient.refusal(port: server.port, path: "/agents/native") == .none)
    }
}
