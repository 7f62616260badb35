import AgentHostClientSupport
import Foundation
import NIOCore
import NIOPosix

/// A minimal WebSocket client for load: HTTP upgrade, masked text frames out, whole frames in. Written for the
/// benchmark (NIO's client upgrader would add a pipeline per connection and hide the frame timing); the tests have
/// their own asserting client.
final class BenchWebSocket: @unchecked Sendable {
    // @unchecked: used by one task at a time.
    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer = ByteBuffer()

    struct Frame {
        var opcode: UInt8
        var payload: ByteBuffer
    }

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) throws {
        self.channel = channel
        self.inbound = channel.inbound.makeAsyncIterator()
        self.outbound = channel.outbound
    }

    static func connect(group: any EventLoopGroup, port: Int, path: String) async throws -> BenchWebSocket {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let socket = try BenchWebSocket(channel: channel)
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try await socket.outbound.write(ByteBuffer(string: request))
        while true {
            if let end = socket.buffer.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = socket.buffer.readString(length: end.upperBound - socket.buffer.readerIndex) ?? ""
                guard head.hasPrefix("HTTP/1.1 101") else { throw BenchError("upgrade to \(path) refused: \(head.prefix(80))") }
                return socket
            }
            try await socket.fill()
        }
    }

    func sendText(_ text: String) async throws {
        try await self.outbound.write(ByteBuffer(bytes: WebSocketClientFrame.encode(opcode: 0x1, payload: text.utf8)))
    }

    /// The next data or close frame (pings are skipped: the server's keep-alive does not concern the load).
    func next() async throws -> Frame {
        while true {
            if let frame = self.parse() {
                if frame.opcode == 0x9 || frame.opcode == 0xA { continue }
                return frame
            }
            try await self.fill()
        }
    }

    func close() async {
        try? await self.channel.channel.close()
    }

    private func fill() async throws {
        guard var next = try await self.inbound.next() else { throw BenchError("connection closed") }
        self.buffer.writeBuffer(&next)
    }

    private func parse() -> Frame? {
        guard let header = WebSocketClientFrame.header(in: self.buffer.readableBytesView) else { return nil }
        self.buffer.moveReaderIndex(forwardBy: header.headerLength)
        let payload = self.buffer.readSlice(length: header.payloadLength) ?? ByteBuffer()
        if self.buffer.readableBytes == 0 { self.buffer.clear() }
        return Frame(opcode: header.opcode, payload: payload)
    }
}

/// A one-shot HTTP/1.1 POST with a JSON body (AutoGen Studio's run-creation call); returns the response body.
func httpPost(group: any EventLoopGroup, port: Int, path: String, json: String) async throws -> String {
    let channel = try await ClientBootstrap(group: group)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    let request = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + "Content-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)"
    return try await channel.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(string: request))
        var response = ByteBuffer()
        for try await var chunk in inbound { response.writeBuffer(&chunk) }
        let text = String(buffer: response)
        guard text.hasPrefix("HTTP/1.1 200"), let body = text.range(of: "\r\n\r\n") else {
            throw BenchError("POST \(path) failed: \(text.prefix(200))")
        }
        return String(text[body.upperBound...])
    }
}
