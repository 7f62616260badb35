import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import AgentHostCore

/// The parser against NIO's own encoder and decoder: whatever NIO's decoder reads from a stream, the parser reads
/// the same, and it refuses what NIO's decoder refuses, with the same errors.
@Suite("Frame parser")
struct WebSocketFrameParserTests {
    static let mask: WebSocketMaskingKey = [0x11, 0x22, 0x33, 0x44]

    /// A client's frames on the wire, from NIO's encoder (which masks the data with the key).
    static func wire(_ frames: [WebSocketFrame]) throws -> ByteBuffer {
        let encoder = EmbeddedChannel(handler: WebSocketFrameEncoder())
        var bytes = ByteBuffer()
        for frame in frames {
            try encoder.writeOutbound(frame)
            while var part = try encoder.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&part) }
        }
        return bytes
    }

    static func nioDecoded(_ bytes: ByteBuffer, maxFrameSize: Int = 1 << 20) throws -> [WebSocketFrame] {
        let decoder = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
        try decoder.writeInbound(bytes)
        var frames: [WebSocketFrame] = []
        while let frame = try decoder.readInbound(as: WebSocketFrame.self) { frames.append(frame) }
        return frames
    }

    static func parsed(_ bytes: ByteBuffer, maxFrameSize: Int = 1 << 20) throws -> [WebSocketFrame] {
        var bytes = bytes
        var frames: [WebSocketFrame] = []
        while let frame = try WebSocketFrameParser.nextFrame(from: &bytes, maxFrameSize: maxFrameSize) {
            frames.append(frame)
        }
        #expect(bytes.readableBytes == 0)
        return frames
    }

    @Test(arguments: [0, 1, 125, 126, 65535, 65536, 70000])
    func readsWhatNIOsDecoderReads(size: Int) throws {
        let frames = [
            WebSocketFrame(fin: false, opcode: .binary, maskKey: Self.mask, data: ByteBuffer(repeating: 0x61, count: size)),
            WebSocketFrame(fin: true, opcode: .ping, maskKey: Self.mask, data: ByteBuffer(bytes: [1, 2])),
            WebSocketFrame(fin: true, rsv1: true, rsv3: true, opcode: .continuation, data: ByteBuffer(string: "end")),
            WebSocketFrame(fin: true, opcode: WebSocketOpcode(encodedWebSocketOpcode: 0x3)!, maskKey: Self.mask,
                           data: ByteBuffer()),  // a reserved opcode: the state machine refuses it, not the parser
        ]
        let bytes = try Self.wire(frames)
        let ours = try Self.parsed(bytes)
        let nios = try Self.nioDecoded(bytes)
        #expect(ours.count == 4)
        #expect(ours == nios)
        #expect(ours[0].unmaskedData == ByteBuffer(repeating: 0x61, count: size))
    }

    /// Given any prefix of a stream, the parser takes exactly the whole frames in it and leaves the rest untouched.
    @Test func aPrefixYieldsItsWholeFramesAndConsumesNothingElse() throws {
        let frames = [
            WebSocketFrame(fin: true, opcode: .text, maskKey: Self.mask, data: ByteBuffer(string: "one")),
            WebSocketFrame(fin: true, opcode: .binary, maskKey: Self.mask, data: ByteBuffer(repeating: 7, count: 300)),
            WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "unmasked")),
            WebSocketFrame(fin: true, opcode: .binary, maskKey: Self.mask, data: ByteBuffer(repeating: 9, count: 70000)),
            WebSocketFrame(fin: true, opcode: .text, maskKey: Self.mask, data: ByteBuffer(string: "after")),
        ]
        let stream = try Self.wire(frames)
        let ends = try frames.indices.map { try Self.wire(Array(frames[...$0])).readableBytes }
        let expected = try Self.nioDecoded(stream)
        #expect(expected.count == frames.count)
        // Every cut through the headers and the small frames; inside the 70,000-byte payload, every 997th.
        let cuts = (0...stream.readableBytes).filter { cut in
            !(ends[2] + 20 < cut && cut < ends[3] - 20) || cut % 997 == 0
        }
        for cut in cuts {
            var prefix = stream.getSlice(at: stream.readerIndex, length: cut)!
            var got: [WebSocketFrame] = []
            while let frame = try WebSocketFrameParser.nextFrame(from: &prefix, maxFrameSize: 1 << 20) {
                got.append(frame)
            }
            let whole = ends.filter { $0 <= cut }
            #expect(got == Array(expected.prefix(whole.count)), "cut at \(cut)")
            #expect(prefix.readableBytes == cut - (whole.last ?? 0), "cut at \(cut)")
        }
    }

    /// What NIO's decoder refuses, the parser refuses with the same error, from the header alone.
    @Test func refusesWhatNIOsDecoderRefuses() throws {
        func refusal(_ header: [UInt8], maxFrameSize: Int = 1024) -> NIOWebSocketError? {
            var bytes = ByteBuffer(bytes: header)
            do {
                _ = try WebSocketFrameParser.nextFrame(from: &bytes, maxFrameSize: maxFrameSize)
                return nil
            } catch {
                return error
            }
        }
        // 1025 bytes announced with a 16-bit length, and 2^63 with a 64-bit one (no payload sent: refused at once).
        #expect(refusal([0x82, 0xFE, 0x04, 0x01]) == .invalidFrameLength)
        #expect(refusal([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]) == .invalidFrameLength)
        #expect(refusal([0x82, 0x7E, 0x04, 0x00]) == nil)  // 1024: allowed, waiting for the payload
        #expect(refusal([0x09, 0x80]) == .fragmentedControlFrame)
        #expect(refusal([0x89, 0xFE, 0x00, 0x7E], maxFrameSize: 1 << 20) == .multiByteControlFrameLength)
        for header: [UInt8] in [[0x82, 0xFE, 0x04, 0x01], [0x09, 0x80], [0x89, 0xFE, 0x00, 0x7E]] {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1024)))
            let ours = try #require(refusal(header, maxFrameSize: 1024))
            #expect(throws: ours) { try channel.writeInbound(ByteBuffer(bytes: header)) }
        }
    }
}
