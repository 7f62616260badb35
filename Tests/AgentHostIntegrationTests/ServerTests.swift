import AgentHostCore
import Foundation
import NIOCore
import Testing

/// The real server on port 0 with the real C echo plugin (compiled from Plugins/echo/echo.c) and a raw client.
@Suite("WebSocket server")
struct ServerTests {
    static func withEchoServer(configure: (inout ServerConfiguration) -> Void = { _ in },
                               _ body: (TestServer) async throws -> Void) async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory)
        try await TestServer.with(pluginDirectory: directory, configure: configure, body)
    }

    @Test func echoesTextAndBinary() async throws {
        try await Self.withEchoServer { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            try await client.sendText("hello, agent ✓")
            let text = try await withTimeout { try await client.readMessageOrClose() }
            #expect(text == .init(fin: true, opcode: 0x1, payload: Array("hello, agent ✓".utf8)))
            try await client.sendBinary([0, 1, 2, 255])
            let binary = try await withTimeout { try await client.readMessageOrClose() }
            #expect(binary == .init(fin: true, opcode: 0x2, payload: [0, 1, 2, 255]))
            await client.close()
        }
    }

    @Test func joinsFragmentsAndAnswersPingsBetweenThem() async throws {
        try await Self.withEchoServer { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            try await client.sendFrame(opcode: 0x1, payload: Array("frag".utf8), fin: false)
            try await client.sendFrame(opcode: 0x9, payload: Array("ping!".utf8))
            try await client.sendFrame(opcode: 0x0, payload: Array("men".utf8), fin: false)
            try await client.sendFrame(opcode: 0x0, payload: Array("ted".utf8), fin: true)
            let pong = try await withTimeout { try await client.readFrame() }
            #expect(pong == .init(fin: true, opcode: 0xA, payload: Array("ping!".utf8)))
            let message = try await withTimeout { try await client.readFrame() }
            #expect(message.text == "fragmented")
            await client.close()
        }
    }

    @Test func completesTheCloseHandshake() async throws {
        try await Self.withEchoServer { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            try await client.sendClose(code: 1000, reason: "done")
            let reply = try await withTimeout { try await client.readFrame() }
            #expect(reply.closeCode == 1000)
            #expect(try await withTimeout { await client.waitForDisconnect() })
        }
    }

    @Test func refusesOversizeMessagesWith1009AndKeepsServing() async throws {
        try await Self.withEchoServer(configure: { $0.webSocket.maxMessageSize = 1024 }) { server in
            let bystander = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            // Split in fragments, each under the frame limit, together over the message limit.
            try await client.sendFrame(opcode: 0x2, payload: [UInt8](repeating: 7, count: 600), fin: false)
            try await client.sendFrame(opcode: 0x0, payload: [UInt8](repeating: 7, count: 600), fin: true)
            let close = try await withTimeout { try await client.readMessageOrClose() }
            #expect(close.closeCode == 1009)
            try await bystander.sendText("still here")
            #expect(try await withTimeout { try await bystander.readMessageOrClose() }.text == "still here")
            await bystander.close()
        }
    }

    @Test func refusesOversizeFramesWith1009() async throws {
        try await Self.withEchoServer(configure: { $0.webSocket.maxFrameSize = 1000 }) { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            try await client.sendBinary([UInt8](repeating: 1, count: 1001))
            #expect(try await withTimeout { try await client.readMessageOrClose() }.closeCode == 1009)
        }
    }

    @Test(arguments: [
        ("bad UTF-8 in one frame", [RawWebSocketClient.encode(opcode: 0x1, payload: [0x68, 0xC3, 0x28])], UInt16(1007)),
        ("bad UTF-8 split over fragments", [
            RawWebSocketClient.encode(opcode: 0x1, payload: [0xE2, 0x82], fin: false),
            RawWebSocketClient.encode(opcode: 0x0, payload: [0x28], fin: true),
        ], UInt16(1007)),
        ("unmasked frame", [RawWebSocketClient.encode(opcode: 0x1, payload: Array("hi".utf8), masked: false)], 1002),
        ("reserved bit", [RawWebSocketClient.encode(opcode: 0x1, payload: Array("hi".utf8), rsv: 0b100)], 1002),
        ("reserved opcode", [RawWebSocketClient.encode(opcode: 0x3, payload: [])], 1002),
        ("continuation without a message", [RawWebSocketClient.encode(opcode: 0x0, payload: [1])], 1002),
        ("fragmented ping", [RawWebSocketClient.encode(opcode: 0x9, payload: [1], fin: false)], 1002),
        ("close code 1005 on the wire", [RawWebSocketClient.encode(opcode: 0x8, payload: [0x03, 0xED])], 1002),
        ("close with a 1-byte payload", [RawWebSocketClient.encode(opcode: 0x8, payload: [0x03])], 1002),
    ] as [(String, [[UInt8]], UInt16)])
    func failsProtocolViolations(name: String, frames: [[UInt8]], expectedCode: UInt16) async throws {
        try await Self.withEchoServer { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            for frame in frames { try await client.sendRaw(frame) }
            let close = try await withTimeout { try await client.readMessageOrClose() }
            #expect(close.closeCode == expectedCode, "\(name)")
            #expect(try await withTimeout { await client.waitForDisconnect() }, "\(name): server drops TCP")
            // The server keeps serving everyone else.
            let next = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            try await next.sendText("ok")
            #expect(try await withTimeout { try await next.readMessageOrClose() }.text == "ok")
            await next.close()
        }
    }

    @Test func survivesAbruptDisconnects() async throws {
        try await Self.withEchoServer { server in
            for _ in 0..<20 {
                let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
                try await client.sendFrame(opcode: 0x1, payload: Array("half".utf8), fin: false)
                await client.close()
            }
            #expect(await eventually { server.server.connections.count == 0 })
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            try await client.sendText("alive")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "alive")
            await client.close()
        }
    }

    @Test func answersPlainHTTP() async throws {
        try await Self.withEchoServer { server in
            let health = try await RawWebSocketClient.connectTCP(port: server.port)
            try await health.sendRaw(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(try await withTimeout { try await health.readHTTPStatus() } == 200)
            await health.close()

            let unknown = try await RawWebSocketClient.connectTCP(port: server.port)
            #expect(try await withTimeout { try await unknown.handshake(path: "/nowhere") } == 404)

            let malformed = try await RawWebSocketClient.connectTCP(port: server.port)
            try await malformed.sendRaw(Array("THIS IS NOT HTTP\r\n\r\n".utf8))
            #expect(try await withTimeout { try await malformed.readHTTPStatus() } == 400)
            #expect(try await withTimeout { await malformed.waitForDisconnect() })

            let badVersion = try await RawWebSocketClient.connectTCP(port: server.port)
            var request = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
            try await badVersion.sendRaw(Array(request.utf8))
            #expect(try await withTimeout { try await badVersion.readHTTPStatus() } == 400)

            let badKey = try await RawWebSocketClient.connectTCP(port: server.port)
            request = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            request += "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"
            try await badKey.sendRaw(Array(request.utf8))
            #expect(try await withTimeout { try await badKey.readHTTPStatus() } == 400)

            let plainOnWebSocketRoute = try await RawWebSocketClient.connectTCP(port: server.port)
            try await plainOnWebSocketRoute.sendRaw(Array("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(try await withTimeout { try await plainOnWebSocketRoute.readHTTPStatus() } == 426)
            await plainOnWebSocketRoute.close()
        }
    }

    @Test func refusesHugeHeaders() async throws {
        try await Self.withEchoServer(configure: { $0.maxHeaderSize = 4096 }) { server in
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            let huge = String(repeating: "a", count: 8192)
            try await client.sendRaw(Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(huge)\r\n\r\n".utf8))
            // NIO's HTTPServerProtocolErrorHandler answers every parse failure, header overflow included, with 400.
            #expect(try await withTimeout { try await client.readHTTPStatus() } == 400)
            #expect(try await withTimeout { await client.waitForDisconnect() })
        }
    }

    @Test func closesSlowHandshakes() async throws {
        // 5 s: long enough that the bystander's handshake, and the slow client's first bytes, make it in time on a
        // loaded 2-core machine (with 1 s, a test process starved for a second found the slow client already cut off;
        // with 3 s, once, the bystander).
        // The request deadline is far off, so only the handshake deadline can close the slow client; the wait for
        // that is long (a fresh clone's first full run starved the server's loop past 15 s once).
        try await Self.withEchoServer(configure: {
            $0.handshakeTimeout = .seconds(5)
            $0.http.requestTimeout = .seconds(300)
        }) { server in
            let bystander = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            try await client.sendRaw(Array("GET /echo HTTP/1.1\r\nHost: x\r\n".utf8))  // never finishes
            #expect(try await withTimeout(seconds: 60) { await client.waitForDisconnect() })
            // The bystander connected first, so its handshake timer would have fired by now: an upgraded
            // connection is past the handshake timeout, it stays and is served.
            try await bystander.sendText("after the slowloris")
            #expect(try await withTimeout { try await bystander.readMessageOrClose() }.text == "after the slowloris")
        }
    }

    @Test func closesIdleConnectionsWith1001() async throws {
        try await Self.withEchoServer(configure: { $0.webSocket.idleTimeout = .milliseconds(200) }) { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            let close = try await withTimeout { try await client.readMessageOrClose() }
            #expect(close.closeCode == 1001)
        }
    }

    @Test func pingsQuietConnectionsAndDropsThoseThatNeverAnswer() async throws {
        try await Self.withEchoServer(configure: {
            $0.webSocket.pingInterval = .milliseconds(100)
            $0.webSocket.pingTimeout = .milliseconds(200)
        }) { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            let ping = try await withTimeout { try await client.readFrame() }
            #expect(ping.opcode == 0x9)
            // No pong, no traffic: the server gives up on us.
            #expect(try await withTimeout { await client.waitForDisconnect() })
            #expect(await eventually { server.server.connections.count == 0 })
        }
    }
}
