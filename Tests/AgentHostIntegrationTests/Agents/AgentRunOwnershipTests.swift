import Foundation
import Testing

/// F4 (and F12): a run belongs to the whole identity that started it (issuer and subject), on the route it was
/// started on; an anonymous run is reached only with the resume token its starter got in the run's first frame.
/// To anyone else a run does not exist: resume, stop and input_response say `unknown_run`, and a `start` with the
/// same id simply starts that client's own run (no `run_exists` oracle, no squatting an ended run's id).
@Suite("agent run ownership", .serialized)
struct AgentRunOwnershipTests {
    /// API keys `alice-key-0123456789` (alice) and `mallory-key-0123456789` (mallory); JWTs signed with the
    /// test secret, issuer `dev`. Routes stay public, so anonymous clients connect too.
    static func authConfig() throws -> [String: Any] {
        let directory = try PluginFixtures.makeDirectory()
        try Data(TokenAuthenticatorTests.secret.utf8).write(to: URL(fileURLWithPath: "\(directory)/secret"))
        return ["access": "public", "auth": [
            "hmac_secret_file": "\(directory)/secret",
            "issuer": "dev",
            "api_keys": [
                ["sha256": "7bafaa96aa2351e6b7fbc258246b08ee66ade6196c76850108303b1dd6d6eb62", "subject": "alice"],
                ["sha256": "effb725d4d65a098fea3c3422fc13de48350942eac9ebf9234c8b97026e6f398", "subject": "mallory"],
            ],
        ]]
    }

    static let aliceKey = ["Authorization: Bearer alice-key-0123456789"]

    static func jwt(_ claims: [String: Any]) throws -> [String] {
        var claims = claims
        claims["iss"] = "dev"
        claims["exp"] = Int(Date().timeIntervalSince1970) + 600
        return ["Authorization: Bearer \(try TokenAuthenticatorTests.token(claims: claims))"]
    }

    /// The run's frames up to its input request (native-agent asks once, then waits).
    static func untilInput(_ client: AgentClient) async throws -> [AgentFrame] {
        var frames: [AgentFrame] = []
        while frames.last?.type != "input_request" {
            let frame = try await client.next()
            if frame.type == "error" { throw AgentClient.Refused(frame: frame) }
            frames.append(frame)
        }
        return frames
    }

    /// Sends each frame and expects `unknown_run` for each: the run does not exist for this client.
    static func expectUnknown(_ client: AgentClient, _ frames: [[String: Any]],
                              sourceLocation: SourceLocation = #_sourceLocation) async throws
    {
        for frame in frames {
            try await client.send(frame)
            let answer = try await client.next()
            #expect(answer.type == "error" && answer.object["code"] as? String == "unknown_run",
                    "\(frame["type"] ?? "") got \(answer)", sourceLocation: sourceLocation)
        }
    }

    @Test func anAnonymousRunIsReachedOnlyWithItsResumeToken() async throws {
        let server = try await AgentServer.start(workers: 1)
        try await withTimeout(seconds: 30) {
            let owner = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await owner.send(["type": "start", "run_id": "anon-1", "task": "count these words"])
            let seen = try await Self.untilInput(owner)

            // Another anonymous client knows the id (it is in every frame the owner's screen shows). Before the
            // fix its resume took the run over: it got the owner's frames, task included, and the owner's
            // socket went silent.
            let other = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await Self.expectUnknown(other, [
                ["type": "resume", "run_id": "anon-1", "last_seq": 0],
                ["type": "resume", "run_id": "anon-1", "last_seq": 0, "resume_token": String(repeating: "0", count: 32)],
                ["type": "input_response", "run_id": "anon-1", "response": "hijacked"],
                ["type": "stop", "run_id": "anon-1"],
            ])
            let token = try #require(seen.first?.object["resume_token"] as? String, "the first frame carries it")
            #expect(seen.dropFirst().allSatisfy { $0.object["resume_token"] == nil }, "only the first frame")
            // Starting the same id is that client's own run, and says nothing about the owner's.
            try await other.send(["type": "start", "run_id": "anon-1", "task": "mine"])
            let mine = try await other.next()
            #expect(mine.type == "message" && mine.runID == "anon-1" && mine.seq == 1)
            #expect(mine.object["resume_token"] as? String != token)
            await other.close()

            // The owner's socket was never silenced: it answers its input and gets its result.
            try await owner.send(["type": "input_response", "run_id": "anon-1", "response": "yes"])
            let rest = try await owner.collect(runID: "anon-1")
            #expect(rest.last?.type == "result")
            #expect(!rest.contains { ($0.data?["content"] as? String) == "hijacked" })
            await owner.close()

            // And the token is all the owner needs on a new socket.
            let back = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await back.send(["type": "resume", "run_id": "anon-1", "last_seq": 0, "resume_token": token])
            let replay = try await back.collect(runID: "anon-1")
            #expect(replay.map(\.text) == (seen + rest).map(\.text))
            await back.close()
        }
    }

    @Test func ownershipIsTheWholeIdentityNotTheSubject() async throws {
        let server = try await AgentServer.start(workers: 1, serverConfig: try Self.authConfig())
        try await withTimeout(seconds: 30) {
            // An API key whose subject is alice ...
            let apiKey = try await AgentClient.connect(port: server.port, path: "/agents/native", headers: Self.aliceKey)
            try await apiKey.send(["type": "start", "run_id": "alice-1", "task": "count these words"])
            _ = try await Self.untilInput(apiKey)
            // ... is not a JWT whose sub is alice.
            let token = try await AgentClient.connect(port: server.port, path: "/agents/native",
                                                      headers: try Self.jwt(["sub": "alice"]))
            try await Self.expectUnknown(token, [["type": "resume", "run_id": "alice-1", "last_seq": 0],
                                                 ["type": "stop", "run_id": "alice-1"]])
            await token.close()

            // A JWT without sub names nobody: its run is as private as an anonymous one.
            let noSubject = try await AgentClient.connect(port: server.port, path: "/agents/native",
                                                          headers: try Self.jwt(["scope": "x"]))
            try await noSubject.send(["type": "start", "run_id": "nosub-1", "task": "count these words"])
            _ = try await Self.untilInput(noSubject)
            for headers in [[], try Self.jwt(["scope": "y"])] {
                let stranger = try await AgentClient.connect(port: server.port, path: "/agents/native", headers: headers)
                try await Self.expectUnknown(stranger, [["type": "resume", "run_id": "nosub-1", "last_seq": 0]])
                await stranger.close()
            }
            await noSubject.close()

            // The API key itself still resumes its run from a new socket.
            await apiKey.close()
            let back = try await AgentClient.connect(port: server.port, path: "/agents/native", headers: Self.aliceKey)
            try await back.send(["type": "resume", "run_id": "alice-1", "last_seq": 0])
            #expect(try await back.collect(runID: "alice-1", answer: "yes").last?.type == "result")
            await back.close()
        }
    }

    /// Studio's `/api/ws/runs/{id}` takes the run id from the path; a run is resumed only on the route path it
    /// was started on (so that route's policy applies, and `/api/ws/runs/9999` is not run 42).
    @Test func aRunIsResumedOnlyOnItsOwnRoute() async throws {
        let server = try await AgentServer.start(workers: 1, serverConfig: try Self.authConfig())
        try await withTimeout(seconds: 60) {
            let owner = try await AgentClient.connect(port: server.port, path: "/api/ws/runs/42", headers: Self.aliceKey)
            try await owner.send(["type": "start", "task": "Draft a plan for streaming."])
            var first = try await owner.next()
            while first.type != "message" { first = try await owner.next() }
            #expect(first.runID == "42")
            for path in ["/api/ws/runs/9999", "/agents/user_proxy"] {
                let elsewhere = try await AgentClient.connect(port: server.port, path: path, headers: Self.aliceKey)
                try await Self.expectUnknown(elsewhere, [["type": "resume", "run_id": "42", "last_seq": 0]])
                await elsewhere.close()
            }
            await owner.close()
            let back = try await AgentClient.connect(port: server.port, path: "/api/ws/runs/42", headers: Self.aliceKey)
            try await back.send(["type": "resume", "run_id": "42", "last_seq": 0])
            let replay = try await back.collect(runID: "42", answer: "Looks good. APPROVE")
            #expect(replay.first?.text == first.text && replay.last?.type == "result")
            await back.close()
        }
    }
}
