import Foundation
import Testing

/// F5 and F6 through the real server: a task has a size limit, and one client (one identity, or one address)
/// cannot take every live-run slot of a route.
@Suite("agent run limits", .serialized)
struct AgentRunLimitsTests {
    @Test func aTaskOverTheLimitIsRefusedNamingIt() async throws {
        // The default limit (128 KiB); the host takes messages up to 1 MiB.
        let server = try await AgentServer.start(workers: 1)
        try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await client.send(["type": "start", "run_id": "big-1", "task": String(repeating: "word ", count: 40_000)])
            let refused = try await client.next()
            #expect(refused.type == "error" && refused.object["code"] as? String == "task_too_large", "\(refused)")
            #expect((refused.object["error"] as? String ?? "").contains("\(128 << 10) bytes"))
            // Nothing was started: a resume finds no run, and a small task still runs.
            try await client.send(["type": "start", "run_id": "small-1", "task": "count these words"])
            #expect(try await client.collect(runID: "small-1", answer: "yes").last?.type == "result")
            await client.close()
        }
    }

    /// Starts `count` native runs (each then waits for its input), 16 per socket: the per-socket limit.
    static func startWaitingRuns(_ count: Int, port: Int, prefix: String, headers: [String] = []) async throws
        -> [AgentClient]
    {
        var sockets: [AgentClient] = []
        for index in 0..<count {
            if index % 16 == 0 {
                sockets.append(try await AgentClient.connect(port: port, path: "/agents/native", headers: headers))
            }
            try await sockets[sockets.count - 1].send(["type": "start", "run_id": "\(prefix)-\(index)", "task": "count"])
            _ = try await AgentRunOwnershipTests.untilInput(sockets[sockets.count - 1])
        }
        return sockets
    }

    /// With the defaults: one address (127.0.0.1, a new port per socket) gets 128 live runs, not the route's 1000.
    @Test func oneAddressCannotTakeEveryRunSlot() async throws {
        let server = try await AgentServer.start(workers: 1)
        try await withTimeout(seconds: 60) {
            let sockets = try await Self.startWaitingRuns(128, port: server.port, prefix: "a")
            let next = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await next.send(["type": "start", "run_id": "a-128", "task": "count"])
            let refused = try await next.next()
            #expect(refused.type == "error" && refused.object["code"] as? String == "too_many_runs", "\(refused)")
            #expect((refused.object["error"] as? String ?? "").contains("address"))
            // A run that ends frees its slot.
            try await sockets[0].send(["type": "stop", "run_id": "a-0"])
            #expect(try await sockets[0].collect(runID: "a-0").last?.status == "cancelled")
            try await next.send(["type": "start", "run_id": "a-128", "task": "count"])
            #expect(try await next.collect(runID: "a-128", answer: "yes").last?.type == "result")
            for socket in sockets + [next] { await socket.close() }
        }
    }

    /// With the defaults: one identity gets 64 live runs; another identity, from the same address, still gets one.
    @Test func oneIdentityCannotTakeEveryRunSlot() async throws {
        var config = try AgentRunOwnershipTests.authConfig()
        config["access"] = "authenticated"
        let server = try await AgentServer.start(workers: 1, serverConfig: config)
        try await withTimeout(seconds: 60) {
            let sockets = try await Self.startWaitingRuns(64, port: server.port, prefix: "r",
                                                          headers: AgentRunOwnershipTests.aliceKey)
            let alice = try await AgentClient.connect(port: server.port, path: "/agents/native",
                                                      headers: AgentRunOwnershipTests.aliceKey)
            try await alice.send(["type": "start", "run_id": "r-64", "task": "count"])
            let refused = try await alice.next()
            #expect(refused.type == "error" && refused.object["code"] as? String == "too_many_runs", "\(refused)")
            #expect((refused.object["error"] as? String ?? "").contains("identity"))
            let mallory = try await AgentClient.connect(port: server.port, path: "/agents/native",
                                                        headers: ["Authorization: Bearer mallory-key-0123456789"])
            try await mallory.send(["type": "start", "run_id": "r-64", "task": "count"])
            #expect(try await mallory.collect(runID: "r-64", answer: "yes").last?.type == "result")
            for socket in sockets + [alice, mallory] { await socket.close() }
        }
    }
}
