import AgentHostCore
import AgentHostPlugins
import Foundation
import Glibc
import NIOCore
import Testing

/// Server-wide limits and route policies: each refusal happens before the upgrade (or, for the message rate, with
/// close 1008), the plugin never hears of a refused attempt, and everyone else keeps being served.
@Suite("Limits")
struct LimitsTests {
    /// The recorder plugin behind a server configured by `configure`; `opens()` counts what reached the plugin.
    static func withRecorder(configure: @escaping (inout ServerConfiguration) -> Void,
                             _ body: (TestServer, () -> Int) async throws -> Void) async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("lifecycle_recorder", into: directory)
        try await TestServer.with(pluginDirectory: directory, configure: configure) { server in
            let plugin = try #require(server.loaded.first)
            try await body(server) { ((try? plugin.recordedLines()) ?? []).filter { $0.hasPrefix("open") }.count }
        }
    }

    @Test func refusesTheConnectionsOfOneAddressPastItsLimitWith429() async throws {
        try await Self.withRecorder(configure: { $0.maxConnectionsPerAddress = 2 }) { server, opens in
            let first = try await RawWebSocketClient.connect(port: server.port, path: "/recorder")
            let second = try await RawWebSocketClient.connect(port: server.port, path: "/recorder")
            let third = try await RawWebSocketClient.connectTCP(port: server.port)
            #expect(try await withTimeout { try await third.handshake(path: "/recorder") } == 429)
            #expect(try await withTimeout { await third.waitForDisconnect() })
            #expect(opens() == 2)
            await first.close()
            // The slot is given back once the connection is gone.
            var admitted = false
            for _ in 0..<100 where !admitted {
                let next = try await RawWebSocketClient.connectTCP(port: server.port)
                admitted = try await withTimeout { try await next.handshake(path: "/recorder") } == 101
                if !admitted { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(admitted)
            try await second.sendText("still served")
            #expect(try await withTimeout { try await second.readMessageOrClose() }.text == "still served")
        }
    }

    @Test func refusesConnectionsPastTheTotalWith503() async throws {
        try await Self.withRecorder(configure: {
            $0.maxConnections = 1
            $0.maxConnectionsPerAddress = 0
        }) { server, opens in
            let first = try await RawWebSocketClient.connect(port: server.port, path: "/recorder")
            let second = try await RawWebSocketClient.connectTCP(port: server.port)
            #expect(try await withTimeout { try await second.handshake(path: "/recorder") } == 503)
            let health = try await RawWebSocketClient.connectTCP(port: server.port)
            try await health.sendRaw(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(try await withTimeout { try await health.readHTTPStatus() } == 503)
            #expect(opens() == 1)
            try await first.sendText("ok")
            #expect(try await withTimeout { try await first.readMessageOrClose() }.text == "ok")
        }
    }

    @Test func closesAFloodingConnectionWith1008() async throws {
        try await Self.withRecorder(configure: {
            $0.webSocket.maxMessagesPerSecond = 20
            $0.webSocket.messageBurst = 5
        }) { server, _ in
            let calm = try await RawWebSocketClient.connect(port: server.port, path: "/recorder")
            let flooder = try await RawWebSocketClient.connect(port: server.port, path: "/recorder")
            // One write: the 50 messages arrive as one burst however busy the machine is.
            try await flooder.sendRaw((0..<50).flatMap {
                RawWebSocketClient.encode(opcode: 0x1, payload: Array("flood \($0)".utf8))
            })
            var echoed = 0
            var close: RawWebSocketClient.Frame?
            while close == nil {
                let frame = try await withTimeout { try await flooder.readMessageOrClose() }
                if frame.opcode == 0x8 { close = frame } else { echoed += 1 }
            }
            #expect(close?.closeCode == 1008)
            #expect(echoed >= 5 && echoed < 50, "\(echoed) messages got through before the cut-off")
            try await calm.sendText("unaffected")
            #expect(try await withTimeout { try await calm.readMessageOrClose() }.text == "unaffected")
        }
    }

    /// Before, only whole messages were counted: 100,000 pings got 100,000 pongs and 200,000 empty continuation
    /// frames were read without a word.
    @Test(arguments: ["pings", "empty continuations"])
    func pingsAndEmptyFragmentsCountAgainstTheRate(flood: String) async throws {
        try await Self.withRecorder(configure: {
            $0.webSocket.maxMessagesPerSecond = 20
            $0.webSocket.messageBurst = 5
        }) { server, _ in
            let flooder = try await RawWebSocketClient.connect(port: server.port, path: "/recorder")
            var bytes: [UInt8] = []
            if flood == "pings" {
                for _ in 0..<200 { bytes += RawWebSocketClient.encode(opcode: 0x9, payload: []) }
            } else {
                bytes += RawWebSocketClient.encode(opcode: 0x1, payload: [], fin: false)
                for _ in 0..<200 { bytes += RawWebSocketClient.encode(opcode: 0x0, payload: [], fin: false) }
            }
            try await flooder.sendRaw(bytes)  // one write: one burst, however busy the machine is
            var pongs = 0
            while true {
                let frame = try await withTimeout { try await flooder.readFrame() }
                if frame.opcode == 0xA { pongs += 1; continue }
                #expect(frame.closeCode == 1008, "\(frame)")
                break
            }
            // The burst (5) and what the rate refills while a starved server works through the 200: far from all.
            #expect(pongs < 50, "\(pongs) pings were answered")
        }
    }

    @Test func refusesBrowserOriginsNotAllowedOnTheRouteWith403() async throws {
        try await Self.withRecorder(configure: {
            $0.routePolicies["/recorder"] = RoutePolicy(allowedOrigins: ["https://app.example.com"])
        }) { server, opens in
            let evil = try await RawWebSocketClient.connectTCP(port: server.port)
            #expect(try await withTimeout {
                try await evil.handshake(path: "/recorder", extraHeaders: ["Origin: https://evil.example"])
            } == 403)
            #expect(opens() == 0)
            // A second Origin header cannot ride behind an allowed first one.
            let twoOrigins = try await RawWebSocketClient.connectTCP(port: server.port)
            #expect(try await withTimeout {
                try await twoOrigins.handshake(path: "/recorder",
                                               extraHeaders: ["Origin: https://app.example.com", "Origin: https://evil.example"])
            } == 403)
            #expect(opens() == 0)
            let good = try await RawWebSocketClient.connectTCP(port: server.port)
            #expect(try await withTimeout {
                try await good.handshake(path: "/recorder", extraHeaders: ["Origin: https://app.example.com"])
            } == 101)
            // Programs send no Origin: the check is about browsers.
            let program = try await RawWebSocketClient.connectTCP(port: server.port)
            #expect(try await withTimeout { try await program.handshake(path: "/recorder") } == 101)
            #expect(await eventually { opens() == 2 })
        }
    }
}

@Suite("Refusal metrics", .serialized)
struct RefusalMetricsTests {
    @Test func everyRefusalIsCountedAtMetrics() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory)
        let config = "\(directory)/agenthost.json"
        try Data(#"{"max_connections_per_address": 1}"#.utf8).write(to: URL(fileURLWithPath: config))
        let server = try await ServerProcess.start(arguments: ["--plugins", directory, "--config", config])
        defer { server.signal(SIGKILL) }

        let first = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        let second = try await RawWebSocketClient.connectTCP(port: server.port)
        #expect(try await withTimeout { try await second.handshake(path: "/echo") } == 429)
        await first.close()
        await second.close()
        // Each of this test's own attempts refused while the server still held the one slot is counted too.
        var refusedWhileWaiting = 0
        /// Waits for the one allowed slot, then asks for `path`.
        func get(_ path: String) async throws -> (Int, String) {
            for _ in 0..<200 {
                let answer = try await server.get(path, headers: [ServerProcess.adminHeader])
                if answer.status != 429 { return answer }
                refusedWhileWaiting += 1
                try await Task.sleep(for: .milliseconds(10))
            }
            return (429, "")
        }
        let unknown = try await get("/nowhere")
        #expect(unknown.0 == 404)
        // The server may not have seen that request's connection go yet (it holds the one slot): refused until then.
        var admitted: RawWebSocketClient?
        for _ in 0..<200 where admitted == nil {
            let attempt = try await RawWebSocketClient.connectTCP(port: server.port)
            let status = try await withTimeout { try await attempt.handshake(path: "/echo") }
            if status == 101 {
                admitted = attempt
            } else {
                #expect(status == 429)
                refusedWhileWaiting += 1
                await attempt.close()
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let client = try #require(admitted, "the one connection slot never came free")
        try await client.sendFrame(opcode: 0x1, payload: [0xFF])  // not UTF-8
        #expect(try await withTimeout { try await client.readMessageOrClose() }.closeCode == 1007)
        await client.close()

        let (status, metrics) = try await get("/metrics")
        #expect(status == 200)
        #expect(metrics.contains(#"agenthost_refusals_total{reason="too_many_connections_from_address"} "#
            + "\(1 + refusedWhileWaiting)\n"), "\(metrics)")
        #expect(metrics.contains(#"agenthost_refusals_total{reason="invalid_utf8"} 1"#), "\(metrics)")
    }
}
