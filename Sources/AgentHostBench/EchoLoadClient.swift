import AgentHostClientSupport
import Glibc
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Drives echo round trips over raw WebSocket connections: each connection keeps `inFlight` masked messages
/// outstanding, sends a new one for every echo it gets back, and records each round trip's latency.
///
/// The client is written for low overhead rather than generality: frames are built once and shared, replies are
/// only parsed far enough to skip them, and writes are flushed once per read burst.
final class EchoLoadClient: Sendable {
    struct Result {
        var messages: Int
        var seconds: Double
        var latenciesNanoseconds: [UInt64]
    }

    let group: any EventLoopGroup
    let port: Int
    /// Set: the load speaks wss (TLS through swift-nio-ssl's client).
    let tls: NIOSSLContext?

    init(group: any EventLoopGroup, port: Int, tls: NIOSSLContext? = nil) {
        self.group = group
        self.port = port
        self.tls = tls
    }

    /// Opens `connections` WebSockets to `path`, runs the load for `warmup` then measures for `duration`.
    func run(path: String, connections: Int, inFlight: Int, payloadSize: Int, warmup: TimeAmount, duration: TimeAmount)
        async throws -> Result
    {
        let frame = Self.maskedTextFrame(size: payloadSize)
        let recorder = LatencyRecorder()
        var channels: [any Channel] = []
        for _ in 0..<connections {
            let handshake = self.group.next().makePromise(of: Void.self)
            let channel = try await ClientBootstrap(group: self.group)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { [tls] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: tls, serverHostname: nil))
                        }
                        try channel.pipeline.syncOperations.addHandler(EchoDriver(
                            path: path, frame: frame, inFlight: inFlight, recorder: recorder, handshake: handshake))
                    }
                }
                .connect(host: "127.0.0.1", port: self.port).get()
            try await handshake.futureResult.get()
            channels.append(channel)
        }
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(EchoDriver.Start()) }
        try await Task.sleep(for: .nanoseconds(warmup.nanoseconds))
        recorder.start()
        let started = ContinuousClock.now
        try await Task.sleep(for: .nanoseconds(duration.nanoseconds))
        let latencies = recorder.stop()
        let elapsed = ContinuousClock.now - started
        for channel in channels { try? await channel.close() }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Result(messages: latencies.count, seconds: seconds, latenciesNanoseconds: latencies)
    }

    static func maskedTextFrame(size: Int) -> ByteBuffer {
        ByteBuffer(bytes: WebSocketClientFrame.encode(opcode: 0x1, payload: repeatElement(UInt8(ascii: "a"), count: size)))
    }
}

/// Collects round-trip latencies from all connections while recording is on.
final class LatencyRecorder: Sendable {
    private let state = Mutex<(on: Bool, samples: [UInt64])>((false, []))

    func start() { self.state.withLock { $0 = (true, []); $0.samples.reserveCapacity(4_000_000) } }

    func stop() -> [UInt64] {
        self.state.withLock { state in
            state.on = false
            return state.samples
        }
    }

    func record(_ batch: [UInt64]) {
        self.state.withLock { state in if state.on { state.samples.append(contentsOf: batch) } }
    }
}

/// One connection of the load: handshake, then keep `inFlight` echoes outstanding.
final class EchoDriver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Start {}

    private let path: String
    private let frame: ByteBuffer
    private let inFlight: Int
    private let recorder: LatencyRecorder
    private let handshake: EventLoopPromise<Void>
    private var buffer = ByteBuffer()
    private var upgraded = false
    private var handshakeDone = false
    /// Send times of the messages in flight, oldest first (echoes come back in order).
    private var sentAt: [UInt64] = []
    private var sentHead = 0
    private var pending: [UInt64] = []

    init(path: String, frame: ByteBuffer, inFlight: Int, recorder: LatencyRecorder, handshake: EventLoopPromise<Void>) {
        self.path = path
        self.frame = frame
        self.inFlight = inFlight
        self.recorder = recorder
        self.handshake = handshake
    }

    func channelActive(context: ChannelHandlerContext) {
        let request = "GET \(self.path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        context.writeAndFlush(Self.wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is Start else { return }
        for _ in 0..<self.inFlight { self.send(context: context) }
        context.flush()
    }

    private func send(context: ChannelHandlerContext) {
        self.sentAt.append(MonotonicClock.nanoseconds())
        context.write(Self.wrapOutboundOut(self.frame), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        if !self.upgraded {
            guard let end = self.buffer.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            let head = self.buffer.readString(length: end.upperBound - self.buffer.readerIndex) ?? ""
            self.handshakeDone = true
            guard head.hasPrefix("HTTP/1.1 101") else {
                self.handshake.fail(BenchError("upgrade to \(self.path) refused: \(head)"))
                return
            }
            self.upgraded = true
            self.handshake.succeed()
        }
        let now = MonotonicClock.nanoseconds()
        while let payload = self.skipFrame() {
            _ = payload
            if self.sentHead < self.sentAt.count {
                self.pending.append(now &- self.sentAt[self.sentHead])
                self.sentHead += 1
            }
            self.send(context: context)
        }
        if self.sentHead > 4096 {
            self.sentAt.removeFirst(self.sentHead)
            self.sentHead = 0
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        if !self.pending.isEmpty {
            self.recorder.record(self.pending)
            self.pending.removeAll(keepingCapacity: true)
        }
    }

    /// Consumes one complete server frame from the buffer; nil if it is not all there yet.
    private func skipFrame() -> Int? {
        guard let header = WebSocketClientFrame.header(in: self.buffer.readableBytesView) else { return nil }
        self.buffer.moveReaderIndex(forwardBy: header.headerLength + header.payloadLength)
        if self.buffer.readableBytes == 0 { self.buffer.clear() }
        return header.payloadLength
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !self.handshakeDone {
            self.handshakeDone = true
            self.handshake.fail(error)
        }
        context.close(promise: nil)
    }
}
