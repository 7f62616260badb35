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
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
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
        let payload = Array(text.utf8)
        var frame = ByteBuffer()
        frame.writeInteger(UInt8(0x81))
        if payload.count < 126 {
            frame.writeInteger(UInt8(0x80 | payload.count))
        } else if payload.count <= 0xFFFF {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(payload.count))
        } else {
            frame.writeInteger(UInt8(0x80 | 127))
            frame.writeInteger(UInt64(payload.count))
        }
        let key: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame.writeBytes(key)
        frame.writeBytes(payload.enumerated().map { $0.element ^ key[$0.offset & 3] })
        try await self.outbound.write(frame)
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
        let view = self.buffer.readableBytesView
        guard view.count >= 2 else { return nil }
        let first = view[view.startIndex], second = view[view.startIndex + 1]
        var length = Int(second & 0x7F)
        var header = 2
        if length == 126 {
            guard view.count >= 4 else { return nil }
            length = Int(view[view.startIndex + 2]) << 8 | Int(view[view.startIndex + 3])
            header = 4
        } else if length == 127 {
            guard view.count >= 10 else { return nil }
            length = 0
            for i in 2..<10 { length = length << 8 | Int(view[view.startIndex + i]) }
            header = 10
        }
        guard view.count >= header + length else { return nil }
        self.buffer.moveReaderIndex(forwardBy: header)
        let payload = self.buffer.readSlice(length: length) ?? ByteBuffer()
        if self.buffer.readableBytes == 0 { self.buffer.clear() }
        return Frame(opcode: first & 0x0F, payload: payload)
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

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
