import AgentHostCore
import AgentHostPlugins
import NIOCore
import Testing

/// Plain HTTP connections (health checks, metrics) are timed from start to end like handshakes are: an idle
/// keep-alive connection, a trickled second request or a trickled body cannot hold a connection slot for ever.
@Suite("Plain HTTP limits")
struct PlainHTTPLimitsTests {
    /// Every deadline is long (a starved test process must not be cut off by one it is not testing) except the
    /// ones a test shortens.
    static func withServer(keepAlive: TimeAmount = .seconds(30), request: TimeAmount = .seconds(30),
                           _ body: (TestServer) async throws -> Void) async throws {
        try await ServerTests.withEchoServer(configure: {
            $0.handshakeTimeout = .seconds(30)
            $0.http.requestTimeout = request
            $0.http.keepAliveTimeout = keepAlive
            $0.http.maxBodySize = 1024
        }, body)
    }

    static let health = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)

    @Test func anIdleKeepAliveConnectionIsClosed() async throws {
        try await Self.withServer(keepAlive: .milliseconds(500)) { server in
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            try await client.sendRaw(Self.health)
            #expect(try await withTimeout { try await client.readHTTPStatus() } == 200)
            // Before: the handshake timer went with the first request head and nothing replaced it.
            #expect(try await withTimeout { await client.waitForDisconnect() })
        }
    }

    @Test func aSecondRequestTrickledAfterTheFirstIsCutOff() async throws {
        try await Self.withServer(keepAlive: .milliseconds(500)) { server in
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            try await client.sendRaw(Self.health)
            #expect(try await withTimeout { try await client.readHTTPStatus() } == 200)
            // And never the rest. A starved test process may send it after the deadline: then the write fails.
            try? await client.sendRaw(Array("GET /hea".utf8))
            #expect(try await withTimeout { await client.waitForDisconnect() })
        }
    }

    @Test func aKeptAliveConnectionThatKeepsAskingIsServed() async throws {
        try await Self.withServer { server in
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            for _ in 0..<5 {
                try await client.sendRaw(Self.health)
                #expect(try await withTimeout { try await client.readHTTPStatus() } == 200)
            }
            await client.close()
        }
    }

    /// Before, an upgrade request after a plain one passed the guard's checks and reserved the route's endpoint (a
    /// reservation that held back the plugin's drain until the connection went), then got 400 all the same.
    @Test func anUpgradeAfterAPlainRequestIsRefusedWithoutReservingTheRoute() async throws {
        try await Self.withServer { server in
            let endpoint = try #require(server.loaded.first?.endpoint)
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            try await client.sendRaw(Self.health)
            #expect(try await withTimeout { try await client.readHTTPStatus() } == 200)
            #expect(try await withTimeout { try await client.handshake(path: "/echo") } == 400)
            #expect(endpoint.pendingConnections == 0)
            await client.close()
        }
    }

    @Test func aTrickledBodyIsCutOffAtTheRequestTimeout() async throws {
        try await Self.withServer(request: .milliseconds(500)) { server in
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            try await client.sendRaw(Self.health)
            #expect(try await withTimeout { try await client.readHTTPStatus() } == 200)
            // Within the body limit, so only the deadline can end it.
            try await client.sendRaw(Array("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab".utf8))
            #expect(try await withTimeout { await client.waitForDisconnect() })
        }
    }

    @Test func anOversizeBodyGets413AndTheConnectionCloses() async throws {
        try await Self.withServer { server in
            let announced = try await RawWebSocketClient.connectTCP(port: server.port)
            try await announced.sendRaw(Array("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n".utf8))
            #expect(try await withTimeout { try await announced.readHTTPStatus() } == 413)
            #expect(try await withTimeout { await announced.waitForDisconnect() })

            let chunked = try await RawWebSocketClient.connectTCP(port: server.port)
            var request = "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            for _ in 0..<3 { request += "200\r\n" + String(repeating: "x", count: 512) + "\r\n" }
            try await chunked.sendRaw(Array(request.utf8))
            #expect(try await withTimeout { try await chunked.readHTTPStatus() } == 413)
            #expect(try await withTimeout { await chunked.waitForDisconnect() })
        }
    }

    @Test func anUpgradeRequestWithABodyIsRefused() async throws {
        try await Self.withServer { server in
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            let status = try await withTimeout {
                try await client.handshake(path: "/echo", extraHeaders: ["Content-Length: 100000000"])
            }
            #expect(status == 400)
            #expect(try await withTimeout { await client.waitForDisconnect() })
        }
    }
}
