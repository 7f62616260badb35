import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import AgentHostCore

@Suite("WebSocket connection handler")
struct WebSocketConnectionHandlerTests {
    let endpoint: RecordingEndpoint
    let channel = EmbeddedChannel()
    let registry = ConnectionRegistry()
    let open = OpenConnections()

    init(endpoint: RecordingEndpoint = RecordingEndpoint(), configure: (inout WebSocketConfiguration) -> Void = { _ in })
        throws
    {
        self.endpoint = endpoint
        var configuration = WebSocketConfiguration()
        configuration.pingInterval = nil
        configure(&configuration)
        let handler = WebSocketConnectionHandler(
            endpoint: endpoint, info: ConnectionInfo(route: "/test", requestTarget: "/test", remoteAddress: "peer"),
            configuration: configuration, registry: self.registry, openConnections: self.open,
            sweeper: nil, logger: Logger(label: "test"))
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        #expect(self.channel.isActive)
        try self.channel.pipeline.syncOperations.addHandler(handler)
    }

    /// Delivers the frame's bytes as one socket read (the handler parses frames itself).
    func send(_ frame: WebSocketFrame, complete: Bool = true) throws {
        try self.send(bytes: Self.bytes(of: frame), complete: complete)
    }

    func send(bytes: ByteBuffer, complete: Bool = true) throws {
        self.channel.pipeline.fireChannelRead(bytes)
        if complete { self.channel.pipeline.fireChannelReadComplete() }
        try self.channel.throwIfErrorCaught()
    }

    /// A frame as a client puts it on the wire, its data written as it is (the test frames are masked already).
    static func bytes(of frame: WebSocketFrame) -> ByteBuffer {
        var bytes = ByteBuffer()
        var first = UInt8(webSocketOpcode: frame.opcode)
        if frame.fin { first |= 0x80 }
        if frame.rsv1 { first |= 0x40 }
        if frame.rsv2 { first |= 0x20 }
        if frame.rsv3 { first |= 0x10 }
        bytes.writeInteger(first)
        let mask: UInt8 = frame.maskKey == nil ? 0 : 0x80
        let length = frame.data.readableBytes
        if length < 126 {
            bytes.writeInteger(mask | UInt8(length))
        } else if length <= Int(UInt16.max) {
            bytes.writeInteger(mask | 126)
            bytes.writeInteger(UInt16(length))
        } else {
            bytes.writeInteger(mask | 127)
            bytes.writeInteger(UInt64(length))
        }
        if let key = frame.maskKey { bytes.writeBytes(Array(key)) }
        bytes.writeImmutableBuffer(frame.data)
        return bytes
    }

    /// The frames the handler wrote and flushed, parsed back from the bytes (server frames are unmasked).
    func written() throws -> [WebSocketFrame] {
        var frames: [WebSocketFrame] = []
        while var bytes = try self.channel.readOutbound(as: ByteBuffer.self) {
            while bytes.readableBytes > 0 {
                let first = bytes.readInteger(as: UInt8.self)!
                let second = bytes.readInteger(as: UInt8.self)!
                #expect(second & 0x80 == 0, "server frames are never masked")
                var length = Int(second & 0x7F)
                if length == 126 { length = Int(bytes.readInteger(as: UInt16.self)!) }
                if length == 127 { length = Int(bytes.readInteger(as: UInt64.self)!) }
                let payload = bytes.readSlice(length: length)!
                frames.append(WebSocketFrame(fin: first & 0x80 != 0,
                                             opcode: WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F)!,
                                             data: payload))
            }
        }
        return frames
    }

    static func text(_ string: String) -> WebSocketFrame { WebSocketConnectionStateMachineTests.text(string) }

    @Test func batchesRepliesUntilTheEndOfTheReadBurst() throws {
        try self.send(Self.text("one"), complete: false)
        try self.send(Self.text("two"), complete: false)
        #expect(try self.written().isEmpty)  // written, not flushed
        self.channel.pipeline.fireChannelReadComplete()
        #expect(try self.written().map { String(buffer: $0.data) } == ["one", "two"])
        #expect(self.endpoint.recorded == ["open /test", "message text one", "message text two"])
        #expect(self.open.count == 1)
        #expect(self.registry.count == 1)
    }

    @Test func flushesSendsMadeOutsideAReadOnTheirOwn() throws {
        let connection = try #require(self.open.all.first)
        #expect(connection.post(id: 5, context: 0) == .ok)
        (self.channel.eventLoop as! EmbeddedEventLoop).run()
        #expect(try self.written().map { String(buffer: $0.data) } == ["from event"])
        #expect(self.endpoint.recorded.last == "event posted 5 cancelled=false")
    }

    @Test func answersPingsAndCompletesThePeersCloseOnce() throws {
        try self.send(WebSocketConnectionStateMachineTests.frame(.ping, [7]))
        let pong = try #require(try self.written().first)
        #expect(pong.opcode == .pong && pong.data == ByteBuffer(bytes: [7]))

        try self.send(WebSocketConnectionStateMachineTests.frame(.connectionClose, [0x03, 0xE8]))
        let close = try #require(try self.written().first)
        #expect(close.opcode == .connectionClose && close.data == ByteBuffer(bytes: [0x03, 0xE8]))
        #expect(!self.channel.isActive)
        #expect(self.endpoint.recorded.filter { $0.hasPrefix("close") } == ["close 1000 "])
        #expect(self.open.count == 0)
        #expect(self.registry.count == 0)
    }

    @Test func failsAProtocolErrorWithCloseFrameThenOneClose() throws {
        try self.send(WebSocketConnectionStateMachineTests.frame(.text, [0x61], masked: false))
        let close = try #require(try self.written().first)
        #expect(close.opcode == .connectionClose && close.data == ByteBuffer(bytes: [0x03, 0xEA]))  // 1002
        #expect(!self.channel.isActive)
        let events = self.endpoint.recorded
        #expect(events.count == 3)
        #expect(events[1].hasPrefix("fail protocolError"))
        #expect(events[2] == "close 1002 ")
    }

    @Test func sessionCloseStartsTheHandshakeAndLaterSendsAreRefused() throws {
        let connection = try #require(self.open.all.first)
        #expect(connection.close(code: 1005) == .badArgument)
        #expect(connection.close(code: 4001, reason: "done") == .ok)
        let close = try #require(try self.written().first)
        #expect(close.opcode == .connectionClose)
        #expect(connection.close(code: 4001) == .closed)
        #expect("late".utf8.withContiguousStorageIfAvailable { connection.send(kind: .text, bytes: .init($0)) } == .closed)
        try self.send(WebSocketConnectionStateMachineTests.frame(.connectionClose, [0x0F, 0xA1]))
        #expect(self.endpoint.recorded.last == "close 4001 done")
    }

    @Test func abruptDisconnectClosesWith1006AfterAFailure() throws {
        _ = try self.channel.close().wait()
        #expect(self.endpoint.recorded.suffix(2) == [
            "fail transport(\"connection lost without a close handshake\")", "close 1006 ",
        ])
    }

    @Test func timersFireOnTheLoopAndPendingOnesAreHandedBackAtClose() throws {
        let connection = try #require(self.open.all.first)
        let loop = self.channel.embeddedEventLoop
        let fired = try #require(connection.startTimer(after: .milliseconds(10), context: 1))
        let pending = try #require(connection.startTimer(after: .seconds(60), context: 2))
        loop.advanceTime(by: .milliseconds(10))
        #expect(self.endpoint.recorded.contains("event timer \(fired) cancelled=false"))
        _ = try self.channel.close().wait()
        loop.run()
        #expect(self.endpoint.recorded.last == "event timer \(pending) cancelled=true")
    }

    @Test func refusesTextThatIsNotUTF8FromTheSession() throws {
        let connection = try #require(self.open.all.first)
        let status = [UInt8]([0xC3, 0x28]).withUnsafeBytes { connection.send(kind: .text, bytes: $0) }
        #expect(status == .badArgument)
    }

    @Test func reportsBackpressureAndThenWritability() throws {
        let connection = try #require(self.open.all.first)
        self.channel.isWritable = false
        self.channel.pipeline.fireChannelWritabilityChanged()  // as NIO does when the high-water mark is crossed
        let status = "x".utf8.withContiguousStorageIfAvailable { connection.send(kind: .text, bytes: .init($0)) }
        #expect(status == .backpressure)
        self.channel.isWritable = true
        self.channel.pipeline.fireChannelWritabilityChanged()
        #expect(self.endpoint.recorded.last == "writable")
    }

    @Test func pingsAQuietPeerAndDropsItWhenNothingComesBack() throws {
        let tested = try WebSocketConnectionHandlerTests(configure: {
            $0.pingInterval = .seconds(30)
            $0.pingTimeout = .seconds(20)
        })
        let handler = try tested.channel.pipeline.syncOperations.handler(type: WebSocketConnectionHandler.self)
        let start = CoarseClock.nanoseconds()
        handler.keepAliveTick(now: start + 10_000_000_000)  // 10 s quiet: nothing yet
        #expect(try tested.written().isEmpty)
        handler.keepAliveTick(now: start + 31_000_000_000)  // 31 s quiet: ping
        #expect(try tested.written().map(\.opcode) == [.ping])
        handler.keepAliveTick(now: start + 40_000_000_000)  // waiting for an answer
        #expect(tested.channel.isActive)
        handler.keepAliveTick(now: start + 52_000_000_000)  // 21 s after the ping: gone
        #expect(!tested.channel.isActive)
        #expect(tested.endpoint.recorded.suffix(2).first?.hasPrefix("fail timeout") == true)
        #expect(tested.endpoint.recorded.last == "close 1006 ")
    }

    @Test func anAnsweredPingKeepsTheConnection() throws {
        let tested = try WebSocketConnectionHandlerTests(configure: { $0.pingInterval = .seconds(30) })
        let handler = try tested.channel.pipeline.syncOperations.handler(type: WebSocketConnectionHandler.self)
        let start = CoarseClock.nanoseconds()
        handler.keepAliveTick(now: start + 31_000_000_000)
        try tested.send(WebSocketConnectionStateMachineTests.frame(.pong, []))
        handler.keepAliveTick(now: start + 52_000_000_000)
        #expect(tested.channel.isActive)
    }

    /// A large frame arriving slowly: its bytes answer for the peer, though no frame has completed yet.
    @Test func bytesOfAnUnfinishedFrameKeepAPingedPeer() throws {
        let tested = try WebSocketConnectionHandlerTests(configure: {
            $0.pingInterval = .seconds(30)
            $0.pingTimeout = .seconds(20)
        })
        let handler = try tested.channel.pipeline.syncOperations.handler(type: WebSocketConnectionHandler.self)
        let start = CoarseClock.nanoseconds()
        handler.keepAliveTick(now: start + 31_000_000_000)
        #expect(try tested.written().map(\.opcode) == [.ping])
        let frame = Self.bytes(of: Self.text(String(repeating: "y", count: 1000)))
        try tested.send(bytes: frame.getSlice(at: frame.readerIndex, length: 500)!)
        handler.keepAliveTick(now: start + 52_000_000_000)  // 21 s after the ping, but bytes came: pinged again
        #expect(tested.channel.isActive)
        #expect(try tested.written().map(\.opcode) == [.ping])
        try tested.send(bytes: frame.getSlice(at: frame.readerIndex + 500, length: frame.readableBytes - 500)!)
        #expect(tested.endpoint.recorded.last == "message text \(String(repeating: "y", count: 1000))")
    }

    /// Between frames a connection holds no bytes; in the middle of one, only that frame's bytes, copied out of
    /// the socket's read buffer (which NIO's pool keeps and reuses).
    @Test func holdsOnlyTheBytesOfAnUnfinishedFrame() throws {
        let handler = try self.channel.pipeline.syncOperations.handler(type: WebSocketConnectionHandler.self)
        let frame = Self.bytes(of: Self.text("complete"))
        var read = ByteBufferAllocator().buffer(capacity: 4096)
        read.writeImmutableBuffer(frame)
        read.writeImmutableBuffer(frame.getSlice(at: frame.readerIndex, length: 5)!)
        try self.send(bytes: read)
        let held = try #require(handler.unparsedBytes)
        #expect(held.count == 5 && held.capacity < 64)
        try self.send(bytes: frame.getSlice(at: frame.readerIndex + 5, length: frame.readableBytes - 5)!)
        #expect(handler.unparsedBytes == nil)
        var partial = ByteBufferAllocator().buffer(capacity: 4096)  // a read that is only the start of a frame
        partial.writeImmutableBuffer(frame.getSlice(at: frame.readerIndex, length: 3)!)
        try self.send(bytes: partial)
        #expect(handler.unparsedBytes.map { $0.count == 3 && $0.capacity < 64 } == true)
        try self.send(bytes: frame.getSlice(at: frame.readerIndex + 3, length: frame.readableBytes - 3)!)
        #expect(handler.unparsedBytes == nil)
        #expect(self.endpoint.recorded == ["open /test", "message text complete", "message text complete",
                                           "message text complete"])
    }

    /// Paused with half a frame held: the replay keeps the half, and the next read finishes it, in order.
    @Test func aPartialFrameHeldWhilePausedIsFinishedAfterTheReplay() throws {
        let connection = try #require(self.open.all.first)
        let handler = try self.channel.pipeline.syncOperations.handler(type: WebSocketConnectionHandler.self)
        #expect(connection.pauseReading() == .ok)
        var burst = Self.bytes(of: Self.text("whole"))
        let next = Self.bytes(of: Self.text("halves"))
        burst.writeImmutableBuffer(next.getSlice(at: next.readerIndex, length: 4)!)
        try self.send(bytes: burst)
        #expect(self.endpoint.recorded == ["open /test"])
        #expect(connection.resumeReading() == .ok)
        self.channel.embeddedEventLoop.run()
        #expect(self.endpoint.recorded == ["open /test", "message text whole"])
        #expect(handler.unparsedBytes?.count == 4)
        try self.send(bytes: next.getSlice(at: next.readerIndex + 4, length: next.readableBytes - 4)!)
        #expect(self.endpoint.recorded == ["open /test", "message text whole", "message text halves"])
        #expect(handler.unparsedBytes == nil)
    }

    @Test func closesAnIdleConnectionWith1001() throws {
        let tested = try WebSocketConnectionHandlerTests(configure: { $0.idleTimeout = .seconds(60) })
        let handler = try tested.channel.pipeline.syncOperations.handler(type: WebSocketConnectionHandler.self)
        handler.keepAliveTick(now: CoarseClock.nanoseconds() + 61_000_000_000)
        let close = try #require(try tested.written().first)
        #expect(close.opcode == .connectionClose && close.data.getInteger(at: close.data.readerIndex, as: UInt16.self) == 1001)
        #expect(tested.endpoint.recorded.last?.hasPrefix("fail timeout") == true)
    }

    /// Inbound flow control: after pauseReading no frame is processed (data or control), nor timed out; resume
    /// processes the held bytes' frames in order and their replies share one flush.
    @Test func pausedReadingHoldsFramesUntilResumed() throws {
        let tested = try WebSocketConnectionHandlerTests(configure: { $0.idleTimeout = .seconds(60) })
        let handler = try tested.channel.pipeline.syncOperations.handler(type: WebSocketConnectionHandler.self)
        let connection = try #require(tested.open.all.first)
        // The pause comes in the middle of one read: the rest of that read is held, and so is the next one.
        var burst = Self.bytes(of: Self.text("pause-reading"))
        burst.writeImmutableBuffer(Self.bytes(of: Self.text("held one")))
        burst.writeImmutableBuffer(Self.bytes(of: WebSocketConnectionStateMachineTests.frame(.ping, [1])))
        try tested.send(bytes: burst, complete: false)
        try tested.send(Self.text("held two"))
        #expect(try tested.written().map { String(buffer: $0.data) } == ["pause-reading"])
        #expect(tested.endpoint.recorded == ["open /test", "message text pause-reading"])
        handler.keepAliveTick(now: CoarseClock.nanoseconds() + 61_000_000_000)  // not idle: paused
        #expect(try tested.written().isEmpty)
        #expect(connection.resumeReading() == .ok)
        #expect(tested.endpoint.recorded.count == 2)  // never inside the call: after the current work on the loop
        try tested.send(Self.text("arrived meanwhile"))  // queued behind the held bytes
        (tested.channel.eventLoop as! EmbeddedEventLoop).run()
        #expect(try tested.written().map(\.opcode) == [.text, .pong, .text, .text])
        #expect(tested.endpoint.recorded.suffix(3)
            == ["message text held one", "message text held two", "message text arrived meanwhile"])
        try tested.send(Self.text("live"))
        #expect(try tested.written().map { String(buffer: $0.data) } == ["live"])
    }

    /// A close started while paused resumes reading: the client's close frame, held or still to come, ends the
    /// handshake.
    @Test func aCloseWhilePausedReadsTheClientsReply() throws {
        let tested = try WebSocketConnectionHandlerTests()
        let connection = try #require(tested.open.all.first)
        #expect(connection.pauseReading() == .ok)
        try tested.send(WebSocketConnectionStateMachineTests.frame(.connectionClose, [0x03, 0xE8]))
        #expect(tested.endpoint.recorded == ["open /test"])
        #expect(connection.close(code: 1000) == .ok)
        #expect(try tested.written().map(\.opcode) == [.connectionClose])
        #expect(tested.endpoint.recorded == ["open /test"])  // on_close is not called inside close()
        (tested.channel.eventLoop as! EmbeddedEventLoop).run()
        #expect(tested.endpoint.recorded.last == "close 1000 ")
        #expect(connection.resumeReading() == .closed)
    }

    /// Frames cut anywhere by the network: each is delivered once, whole and in order, however the reads fall.
    @Test(arguments: [1, 2, 3, 7, 64])
    func framesCutIntoPiecesAreDeliveredWhole(pieceSize: Int) throws {
        var stream = Self.bytes(of: Self.text("first"))
        stream.writeImmutableBuffer(Self.bytes(of: Self.text(String(repeating: "x", count: 300))))  // 16-bit length
        stream.writeImmutableBuffer(Self.bytes(of: WebSocketConnectionStateMachineTests.frame(.ping, [])))
        stream.writeImmutableBuffer(Self.bytes(of: Self.text("last")))
        while stream.readableBytes > 0 {
            try self.send(bytes: stream.readSlice(length: min(pieceSize, stream.readableBytes))!)
        }
        #expect(self.endpoint.recorded == [
            "open /test", "message text first", "message text \(String(repeating: "x", count: 300))",
            "message text last",
        ])
        #expect(try self.written().map(\.opcode) == [.text, .text, .pong, .text])
    }

    /// A frame longer than the maximum is refused from its header, before its payload is read: 1009.
    @Test func aFrameOverTheMaximumIsRefusedFromItsHeader() throws {
        let tested = try WebSocketConnectionHandlerTests(configure: { $0.maxFrameSize = 1024 })
        var header = ByteBuffer(bytes: [0x82, 0xFF])  // binary, masked, 64-bit length
        header.writeInteger(UInt64(1 << 40))
        try tested.send(bytes: header)
        let close = try #require(try tested.written().first)
        #expect(close.opcode == .connectionClose && close.data == ByteBuffer(bytes: [0x03, 0xF1]))  // 1009
        #expect(!tested.channel.isActive)
        #expect(tested.endpoint.recorded.last == "close 1009 ")
    }

    /// A data frame that would take its message past the message limit is refused from its header (1009), before
    /// its payload is read: a frame under the frame limit no longer buys that much memory for a doomed message.
    @Test(arguments: [false, true])
    func aMessageOverTheLimitIsRefusedFromAFramesHeader(asContinuation: Bool) throws {
        let tested = try WebSocketConnectionHandlerTests(configure: {
            $0.maxFrameSize = 1 << 20
            $0.maxMessageSize = 1000
        })
        if asContinuation {
            try tested.send(WebSocketConnectionStateMachineTests.frame(.text, Array(repeating: 0x61, count: 600), fin: false))
        }
        var header = ByteBuffer(bytes: [asContinuation ? 0x80 : 0x81, 0xFE])  // masked, 16-bit length
        header.writeInteger(UInt16(asContinuation ? 500 : 2000))
        header.writeBytes([1, 2, 3, 4, 0x61])  // the mask and the first payload byte: the rest never comes
        try tested.send(bytes: header)
        let close = try #require(try tested.written().first)
        #expect(close.opcode == .connectionClose && close.data == ByteBuffer(bytes: [0x03, 0xF1]))  // 1009
        #expect(tested.endpoint.recorded.last == "close 1009 ")
    }

    /// A control frame split into fragments is a protocol error (1002), found by the parser.
    @Test func aFragmentedPingIsAProtocolError() throws {
        try self.send(WebSocketConnectionStateMachineTests.frame(.ping, [1], fin: false))
        let close = try #require(try self.written().first)
        #expect(close.opcode == .connectionClose && close.data == ByteBuffer(bytes: [0x03, 0xEA]))
        #expect(self.endpoint.recorded.last == "close 1002 ")
    }

    @Test func anEndpointThatRefusesGetsNoCloseAndTheClientGets1011() throws {
        let refusing = try WebSocketConnectionHandlerTests(endpoint: RecordingEndpoint(refuse: true))
        let close = try #require(try refusing.written().first)
        #expect(close.opcode == .connectionClose && close.data == ByteBuffer(bytes: [0x03, 0xF3]))  // 1011
        #expect(refusing.endpoint.recorded == ["open /test"])
        #expect(refusing.open.count == 0 && refusing.registry.count == 0)
    }
}

@Suite("Frame writer")
struct WebSocketFrameWriterTests {
    @Test(arguments: [0, 1, 125, 126, 65535, 65536, 70000])
    func writesHeadersThatNIOsDecoderReadsBack(size: Int) throws {
        var frame = WebSocketFrameWriter.makeBuffer(payloadSize: size, allocator: ByteBufferAllocator())
        frame.writeRepeatingByte(0x61, count: size)
        WebSocketFrameWriter.finishFrame(&frame, opcode: .binary)
        let decoder = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
        try decoder.writeInbound(frame)
        let decoded = try #require(try decoder.readInbound(as: WebSocketFrame.self))
        #expect(decoded.fin && decoded.opcode == .binary && decoded.maskKey == nil)
        #expect(decoded.data == ByteBuffer(repeating: 0x61, count: size))
        #expect(try decoder.readInbound(as: WebSocketFrame.self) == nil)
    }
}
