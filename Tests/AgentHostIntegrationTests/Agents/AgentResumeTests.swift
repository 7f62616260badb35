import Foundation
import Testing

/// Runs outlive their sockets: `resume {run_id, last_seq}` on a new socket replays what the client missed, then
/// goes on live; a run nobody resumes within the grace period is cancelled.
@Suite("agent resume", .serialized)
struct AgentResumeTests {
    /// Every frame of a run, exactly once, across the two sockets.
    func expectEveryFrameOnce(_ frames: [AgentFrame], sourceLocation: SourceLocation = #_sourceLocation) {
        let seqs = frames.compactMap(\.seq)
        #expect(seqs == Array(1...max(1, seqs.count)), "\(seqs)", sourceLocation: sourceLocation)
        #expect(frames.filter(\.isTerminal).count == 1, sourceLocation: sourceLocation)
    }

    @Test func resumeAfterADroppedSocketYieldsEveryFrameExactlyOnce() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let first = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy")
            try await first.send(["type": "start", "run_id": "resume-1", "task": "Draft a plan for streaming."])
            var seen: [AgentFrame] = []
            while seen.last?.type != "input_request" { seen.append(try await first.next()) }
            // The client processed all but the last three frames when its socket died (no close frame).
            let kept = Array(seen.dropLast(3))
            await first.close()

            let second = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy")
            // Anonymous: the run's resume token (from its first frame) is what makes this client its owner.
            try await second.send(["type": "resume", "run_id": "resume-1", "last_seq": kept.last?.seq ?? 0,
                                   "resume_token": seen.first?.object["resume_token"] ?? ""])
            let rest = try await second.collect(runID: "resume-1", answer: "Looks good. APPROVE")
            // The replayed frames are the very frames the first socket had.
            #expect(rest.prefix(3).map(\.text) == seen.suffix(3).map(\.text))
            self.expectEveryFrameOnce(kept + rest)
            try AutoGenCaptures.expectMatches(kept + rest, capture: "team_user_proxy")
            await second.close()
        }
    }

    @Test func aRunGoesOnWhileItsClientIsAway() async throws {
        let server = try await AgentServer.start()
        try await withTimeout(seconds: 30) {
            let first = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await first.send(["type": "start", "run_id": "away-1", "task": "Write a poem about WebSockets."])
            let one = try await first.next()
            await first.close()
            try await Task.sleep(for: .milliseconds(500))  // the run completes meanwhile, into its buffer

            let second = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await second.send(["type": "resume", "run_id": "away-1", "last_seq": 1,
                                   "resume_token": one.object["resume_token"] ?? ""])
            let rest = try await second.collect(runID: "away-1")
            self.expectEveryFrameOnce([one] + rest)
            try AutoGenCaptures.expectMatches([one] + rest, capture: "team_round_robin")
            await second.close()
        }
    }

    @Test func aRunNobodyResumesIsCancelledAfterTheGracePeriod() async throws {
        // Grace 3 s: the run is cancelled about 3 s after its socket went, forgotten about 3 s after that. The
        // resume comes at 4.5 s, in the middle of that window, so a busy machine does not tip it either way (with
        // 2 s and a resume at 3 s, a test process starved for a second came too late).
        let server = try await AgentServer.start(autogen: ["resume_grace_ms": 3000])
        try await withTimeout(seconds: 30) {
            let first = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy")
            try await first.send(["type": "start", "run_id": "gone-1", "task": "Draft a plan for streaming."])
            let token = try await first.next().object["resume_token"] ?? ""
            while try await first.next().type != "input_request" {}
            await first.close()
            try await Task.sleep(for: .milliseconds(4500))

            // The cancellation is the run's last frame, in the run's log like every frame.
            let second = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy")
            try await second.send(["type": "resume", "run_id": "gone-1", "last_seq": 0, "resume_token": token])
            let frames = try await second.collect(runID: "gone-1")
            let end = try #require(frames.last)
            #expect(end.type == "completion" && end.status == "cancelled")
            #expect((end.object["stop_reason"] as? String ?? "").contains("did not resume"))
            self.expectEveryFrameOnce(frames)

            // An ended run is no longer forgotten after the grace period: the host's run log keeps it (its
            // retention decides), so a later resume gets the same frames again.
            try await Task.sleep(for: .milliseconds(3500))
            try await second.send(["type": "resume", "run_id": "gone-1", "last_seq": 0, "resume_token": token])
            #expect(try await second.collect(runID: "gone-1").map(\.text) == frames.map(\.text))
            await second.close()
        }
    }

    /// What a run keeps is the host's run log retention now (the SDK's `buffer_frames` moved there): here 4 KiB
    /// per run, so the oldest frames of a longer run are gone and a resume from before them is a gap. The host
    /// drops in the batches it stored (every 50 ms by default: two tokens 25 ms apart per batch, many batches per run).
    @Test func resumingFromBeforeWhatTheHostKeepsIsAGapError() async throws {
        let server = try await AgentServer.start(native: ["token_delay_ms": 25],
                                                 serverConfig: ["run_log": ["max_bytes_per_log": 4096]])
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await client.send(["type": "start", "run_id": "gap-1", "task": "Write a poem about WebSockets please."])
            // A live reader slower than the log may itself be told of a gap: read past those, keep the frames.
            var frames: [AgentFrame] = []
            while frames.last?.isTerminal != true {
                let frame = try await client.next()
                if frame.type == "error" {
                    #expect(frame.object["code"] as? String == "resume_gap")
                    continue
                }
                frames.append(frame)
                if frame.type == "input_request" {
                    try await client.send(["type": "input_response", "run_id": "gap-1", "response": "yes"])
                }
            }
            #expect(frames.map(\.text).joined().utf8.count > 2 * 4096)
            try await client.send(["type": "resume", "run_id": "gap-1", "last_seq": 0])
            let gap = try await client.next()
            #expect(gap.type == "error" && gap.object["code"] as? String == "resume_gap", "\(gap) after \(frames.count) frames")
            var firstSeq = try #require(gap.object["first_seq"] as? Int)
            #expect(firstSeq > 1)
            // From what the host keeps it works, byte for byte. (The host drops by stored batch, and the last
            // batches of the run may be stored after the first answer: then the oldest kept moves on once more.)
            var replay: [AgentFrame] = []
            for _ in 0..<5 {
                try await client.send(["type": "resume", "run_id": "gap-1", "last_seq": firstSeq - 1])
                do {
                    replay = try await client.collect(runID: "gap-1")
                    break
                } catch let refused as AgentClient.Refused {
                    #expect(refused.frame.object["code"] as? String == "resume_gap")
                    firstSeq = try #require(refused.frame.object["first_seq"] as? Int)
                }
            }
            #expect(replay.map(\.text) == frames.filter { ($0.seq ?? 0) >= firstSeq }.map(\.text))
            await client.close()
        }
    }

    /// Only the identity that started a run can resume, stop or answer it; to anyone else it does not exist.
    @Test func anotherIdentityCannotResumeARun() async throws {
        let auth: [String: Any] = [
            "auth": ["api_keys": [
                ["sha256": "7bafaa96aa2351e6b7fbc258246b08ee66ade6196c76850108303b1dd6d6eb62", "subject": "alice"],
                ["sha256": "effb725d4d65a098fea3c3422fc13de48350942eac9ebf9234c8b97026e6f398", "subject": "mallory"],
            ]],
            "access": "authenticated",
        ]
        let server = try await AgentServer.start(serverConfig: auth)
        let alice = ["Authorization: Bearer alice-key-0123456789"]
        let mallory = ["Authorization: Bearer mallory-key-0123456789"]
        try await withTimeout(seconds: 30) {
            let owner = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy", headers: alice)
            try await owner.send(["type": "start", "run_id": "alice-1", "task": "Draft a plan for streaming."])
            while try await owner.next().type != "input_request" {}
            await owner.close()

            let thief = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy", headers: mallory)
            for frame: [String: Any] in [["type": "resume", "run_id": "alice-1", "last_seq": 0],
                                         ["type": "stop", "run_id": "alice-1"],
                                         ["type": "input_response", "run_id": "alice-1", "response": "APPROVE"]]
            {
                try await thief.send(frame)
                let refused = try await thief.next()
                #expect(refused.type == "error" && refused.object["code"] as? String == "unknown_run")
            }
            await thief.close()

            let back = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy", headers: alice)
            try await back.send(["type": "resume", "run_id": "alice-1", "last_seq": 0])
            let frames = try await back.collect(runID: "alice-1", answer: "Looks good. APPROVE")
            #expect(frames.last?.type == "result")
            await back.close()
        }
    }
}
