import NIOCore
import NIOWebSocket

/// Reads RFC 6455 frames (section 5.2) out of the bytes a connection has received.
///
/// Written by hand because NIO's `WebSocketFrameDecoder` only works as a `ByteToMessageDecoder` in a handler of its
/// own (its parser is internal): that handler, its context and `ByteToMessageHandler`'s buffers were ~330 bytes of
/// every idle connection (docs/idle-memory.md), and one more pipeline hop per frame. The handler that owns the
/// connection parses instead (`WebSocketConnectionHandler`). It enforces what NIO's decoder enforces, with the same
/// errors, so the handler answers them as before: a frame longer than `maxFrameSize` (refused as soon as the
/// length is read, before its payload arrives), a fragmented control frame, a control frame over 125 bytes. The
/// rest of RFC 6455 (reserved bits and opcodes, masking, fragmentation order, UTF-8) is the state machine's.
///
/// It keeps no state between calls: a frame whose bytes have not all arrived is read again from its first byte when
/// more come (a header is at most 14 bytes), so a connection between frames holds nothing here.
enum WebSocketFrameParser {
    /// The next whole frame at the buffer's reader index, consuming it; nil (consuming nothing) if its bytes have
    /// not all arrived. The frame's payload is a slice of `buffer`, still masked (as NIO's decoder hands it up).
    static func nextFrame(from buffer: inout ByteBuffer, maxFrameSize: Int) throws(NIOWebSocketError)
        -> WebSocketFrame?
    {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self),
              let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }
        var headerLength = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let word = buffer.getInteger(at: start + 2, as: UInt16.self) else { return nil }
            length = Int(word)
            headerLength = 4
        } else if length == 127 {
            guard let quad = buffer.getInteger(at: start + 2, as: UInt64.self) else { return nil }
            guard quad <= UInt64(maxFrameSize) else { throw .invalidFrameLength }
            length = Int(quad)
            headerLength = 10
        }
        try self.validate(first: first, length: length, maxFrameSize: maxFrameSize)
        var maskKey: WebSocketMaskingKey?
        if second & 0x80 != 0 {
            guard let key = buffer.viewBytes(at: start + headerLength, length: 4) else { return nil }
            maskKey = WebSocketMaskingKey(key)
            headerLength += 4
        }
        guard buffer.readableBytes - headerLength >= length else { return nil }
        buffer.moveReaderIndex(forwardBy: headerLength)
        let payload = buffer.readSlice(length: length)!
        return WebSocketFrame(fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, rsv2: first & 0x20 != 0,
                              rsv3: first & 0x10 != 0,
                              opcode: WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F)!,  // any 4 bits is one
                              maskKey: maskKey, data: payload)
    }

    /// The opcode and payload length of the frame at the reader index, once its header has arrived (its payload
    /// need not have): what a limit can refuse before the payload is read.
    static func header(of buffer: ByteBuffer) -> (opcode: UInt8, length: Int)? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self),
              let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }
        switch second & 0x7F {
        case 126: return buffer.getInteger(at: start + 2, as: UInt16.self).map { (first & 0x0F, Int($0)) }
        case 127: return buffer.getInteger(at: start + 2, as: UInt64.self).map { (first & 0x0F, Int(clamping: $0)) }
        case let length: return (first & 0x0F, Int(length))
        }
    }

    /// NIO's decoder's checks (`WSParser.validateState`), made as soon as the length is known.
    private static func validate(first: UInt8, length: Int, maxFrameSize: Int) throws(NIOWebSocketError) {
        guard length <= maxFrameSize else { throw .invalidFrameLength }
        if first & 0x08 != 0 {  // a control frame: opcodes 0x8 to 0xF
            guard first & 0x80 != 0 else { throw .fragmentedControlFrame }
            guard length <= 125 else { throw .multiByteControlFrameLength }
        }
    }
}
