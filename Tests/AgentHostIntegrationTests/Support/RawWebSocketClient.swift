import AgentHostClientSupport
import NIOCore
import NIOPosix
import NIOSSL

/// A WebSocket client that writes and reads raw bytes, so tests control every bit on the wire (unmasked frames,
/// bad UTF-8, reserved bits) and see exactly what the server sends back. Deliberately independent of the server's
/// own framing code.
final class RawWebSocketClient: @unchecked Sendable {
    // @unchecked: used from one test task at a time.
    struct Frame: Equatable {
        var fin: Bool
        var opcode: UInt8
        var payload: [UInt8]

        var text: String { String(decoding: self.payload, as: UTF8.self) }
        var closeCode: UInt16? {
            guard self.opcode == 0x8, self.payload.count >= 2 else { return nil }
            return UInt16(self.payload[0]) << 8 | UInt16(self.payload[1])
        }
    }

    enum ClientError: Error {
        case handshakeFailed(String)
        case connectionClosed
        case timedOut
    }

    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer = ByteBuffer()
    /// The HTTP response head of the handshake (status line and headers).
    private(set) var handshakeResponse = ""
    /// The client's own port (to find the server's end of the connection).
    var localPort: Int? { self.channel.channel.localAddress?.port }

    deinit {
        self.outbound.finish()
        self.channel.channel.close(promise: nil)
    }

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) throws {
        self.channel = channel
        self.inbound = channel.inbound.makeAsyncIterator()
        self.outbound = channel.outbound
    }

    /// Opens a TCP connection (TLS first when `tls` is given, verifying the server as `localhost`) without any
    /// WebSocket handshake.
    static func connectTCP(port: Int, tls: NIOSSLContext? = nil,
                           group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        async throws -> RawWebSocketClient
    {
        // 30 s, not NIO's 10 s: the whole suite on two cores (server processes, Python workers, compilers) has kept
        // a client's loop from seeing its connect complete for over 10 s; a dead server fails the test either way.
        let channel = try await ClientBootstrap(group: group).connectTimeout(.seconds(30))
            .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                if let tls {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                }
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        return try RawWebSocketClient(channel: channel)
    }

    /// The certificate the server presented (TLS connections).
    func peerCertificate() async throws -> NIOSSLCertificate? {
        let channel = self.channel.channel
        return try await channel.eventLoop.submit { try channel.pipeline.syncOperations.nioSSL_peerCertificate() }.get()
    }

    /// Connects and completes the WebSocket handshake for `path`; throws unless the answer is 101.
    static func connect(port: Int, path: String, extraHeaders: [String] = [], tls: NIOSSLContext? = nil)
        async throws -> RawWebSocketClient
    {
        let client = try await self.connectTCP(port: port, tls: tls)
        let status = try await client.handshake(path: path, extraHeaders: extraHeaders)
        guard status == 101 else { throw ClientError.handshakeFailed(client.handshakeResponse) }
        return client
    }

    /// Sends an upgrade request and returns the HTTP status of the answer.
    func handshake(path: String, extraHeaders: [String] = []) async throws -> Int {
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for header in extraHeaders { request += header + "\r\n" }
        request += "\r\n"
        try await self.sendRaw(Array(request.utf8))
        return try await self.readHTTPStatus()
    }

    /// Reads an HTTP response head and returns its status code.
    func readHTTPStatus() async throws -> Int {
        while true {
            if let end = self.buffer.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) {
                let length = end.upperBound - self.buffer.readerIndex
                self.handshakeResponse = self.buffer.readString(length: length) ?? ""
                let statusLine = self.handshakeResponse.split(separator: "\r\n").first ?? ""
                let parts = statusLine.split(separator: " ")
                return parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            }
            try await self.fill()
        }
    }

    /// Reads whatever is left until the server closes the connection.
    func readToEnd() async throws -> String {
        while true {
            do { try await self.fill() } catch ClientError.connectionClosed { break }
        }
        return self.buffer.readString(length: self.buffer.readableBytes) ?? ""
    }

    func sendRaw(_ bytes: [UInt8]) async throws {
        try await self.outbound.write(ByteBuffer(bytes: bytes))
    }

    /// Sends one frame, masked unless `masked` is false.
    func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true) async throws {
        try await self.sendRaw(Self.encode(opcode: opcode, payload: payload, fin: fin, rsv: rsv, masked: masked))
    }

    func sendText(_ text: String) async throws { try await self.sendFrame(opcode: 0x1, payload: Array(text.utf8)) }
    func sendBinary(_ bytes: [UInt8]) async throws { try await self.sendFrame(opcode: 0x2, payload: bytes) }

    func sendClose(code: UInt16, reason: String = "") async throws {
        try await self.sendFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }

    static func encode(opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true) -> [UInt8] {
        WebSocketClientFrame.encode(opcode: opcode, payload: payload, fin: fin, rsv: rsv, masked: masked)
    }

    /// Reads the next frame from the server.
    func readFrame() async throws -> Frame {
        while true {
            if let frame = self.parseFrame() { return frame }
            try await self.fill()
        }
    }

    /// Reads frames until a data frame or a close arrives (skipping pings and pongs).
    func readMessageOrClose() async throws -> Frame {
        while true {
            let frame = try await self.readFrame()
            if frame.opcode != 0x9 && frame.opcode != 0xA { return frame }
        }
    }

    /// Whether the server closed the TCP connection (reads until EOF, dropping data).
    func waitForDisconnect() async -> Bool {
        while true {
            do { try await self.fill() } catch { return true }
        }
    }

    func close() async {
        try? await self.channel.channel.close()
    }

    /// Half-closes: the server reads end-of-file after the bytes already sent.
    func finishSending() async {
        try? await self.channel.channel.close(mode: .output)
    }

    private func fill() async throws {
        guard var next = try await self.inbound.next() else { throw ClientError.connectionClosed }
        self.buffer.writeBuffer(&next)
    }

    private func parseFrame() -> Frame? {
        guard let header = WebSocketClientFrame.header(in: self.buffer.readableBytesView) else { return nil }
        self.buffer.moveReaderIndex(forwardBy: header.headerLength)
        let payload = self.buffer.readBytes(length: header.payloadLength) ?? []
        return Frame(fin: header.fin, opcode: header.opcode, payload: payload)
    }
}
