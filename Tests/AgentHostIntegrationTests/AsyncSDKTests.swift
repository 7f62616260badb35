import Foundation
import Testing

/// The async/await SDK (AsyncConnection) through the async-echo example plugin, served by the real binary.
@Suite("async SDK", .serialized)
struct AsyncSDKTests {
    static func server() async throws -> ServerProcess {
        let directory = try PluginFixtures.makeDirectory()
        let name = "libagenthost-async-echo.so"
        try FileManager.default.copyItem(atPath: try ServerProcess.product(name), toPath: "\(directory)/\(name)")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(directory)/\(name)")
        return try await ServerProcess.start(arguments: ["--plugins", directory])
    }

    @Test func inboundMessagesArriveInOrderAsAnAsyncSequence() async throws {
        let server = try await Self.server()
        try await withTimeout {
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/async-echo")
            for index in 0..<100 { try await client.sendText("message \(index)") }
            try await client.sendBinary([0, 1, 2, 255])
            for index in 0..<100 { #expect(try await client.readMessageOrClose().text == "message \(index)") }
            let binary = try await client.readMessageOrClose()
            #expect(binary.opcode == 0x2 && binary.payload == [0, 1, 2, 255])
            await client.close()
        }
        // The plugin's metric, defined through the Swift SDK.
        let (_, metrics) = try await server.get("/metrics", headers: [ServerProcess.adminHeader])
        #expect(metrics.contains(#"agenthost_plugin_async_echo_messages_total{plugin="async-echo"} 101"#), "\(metrics)")
    }

    /// 20 MiB for a client that does not read for a second: past the 8 MiB outbound hard limit, which would cut
    /// off a plugin that ignores backpressure (see the firehose test). The awaited writes wait instead, and
    /// every message arrives.
    @Test func awaitedWritesFollowTheClientsPace() async throws {
        let server = try await Self.server()
        try await withTimeout(seconds: 60) {
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/async-echo")
            let text = String(repeating: "x", count: 1024)
            try await client.sendText("repeat 20480 \(text)")
            try await Task.sleep(for: .seconds(1))
            for _ in 0..<20480 {
                let frame = try await client.readMessageOrClose()
                guard frame.opcode == 0x1, frame.payload.count == 1024 else {
                    Issue.record("got opcode \(frame.opcode) close \(frame.closeCode.map(String.init) ?? "-")")
                    return
                }
            }
            try await client.sendText("still open")
            #expect(try await client.readMessageOrClose().text == "still open")
            await client.close()
        }
    }

    /// The SDK's admit (ABI 1.2 on_upgrade): async-echo selects "echo" over the host's choice (the first entry).
    @Test func thePluginChoosesItsSubprotocolBeforeThe101() async throws {
        let server = try await Self.server()
        let client = try await RawWebSocketClient.connectTCP(port: server.port)
        #expect(try await client.handshake(path: "/async-echo", extraHeaders: ["Sec-WebSocket-Protocol: other, echo"]) == 101)
        #expect(client.handshakeResponse.lowercased().contains("sec-websocket-protocol: echo\r\n"))
        await client.close()
    }

    @Test func returningFromHandleClosesTheConnectionNormally() async throws {
        let server = try await Self.server()
        try await withTimeout {
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/async-echo")
            try await client.sendClose(code: 1000)
            let close = try await client.readMessageOrClose()
            #expect(close.opcode == 0x8 && close.closeCode == 1000)
        }
    }
}
