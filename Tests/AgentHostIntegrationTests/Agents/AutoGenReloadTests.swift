import AgentHostPlugins
import Foundation
import Glibc
import Testing

/// Deploying a new autogen-team while runs are in flight: the run on the old version finishes on it (its workers
/// live until the drain ends), new sockets get the new version with its own workers.
@Suite("autogen-team hot reload", .serialized)
struct AutoGenReloadTests {
    @Test func aRunInFlightFinishesOnTheOldVersionWhileNewSocketsGetTheNew() async throws {
        let (server, plugins) = try await AgentServer.startWithPlugins(workers: 1)
        try await withTimeout(seconds: 60) {
            let old = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy")
            try await old.send(["type": "start", "run_id": "before-deploy", "task": "Draft a plan for streaming."])
            var frames: [AgentFrame] = []
            while frames.last?.type != "input_request" { frames.append(try await old.next()) }

            try await AgentServer.redeploy("libagenthost-autogen-team.so", plugin: "autogen-team", plugins: plugins,
                                           server: server)

            // New sockets: the new version, its own worker pool, the whole stream.
            let new = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await new.send(["type": "start", "task": "Write a poem about WebSockets."])
            try AutoGenCaptures.expectMatches(try await new.collect(), capture: "team_round_robin")
            await new.close()

            // The old run, waiting for input through all of it, completes on the old version.
            try await old.send(["type": "input_response", "response": "Looks good. APPROVE"])
            frames += try await old.collect(runID: "before-deploy")
            try AutoGenCaptures.expectMatches(frames, capture: "team_user_proxy")
            await old.close()
        }
        let statuses = try await server.plugins().filter { $0.name == "autogen-team" }
        #expect(statuses.contains { $0.state == "serving" && ($0.generation ?? 0) >= 2 })
    }
}
