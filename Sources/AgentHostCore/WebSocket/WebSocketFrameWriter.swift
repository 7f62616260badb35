import NIOCore
import NIOWebSocket

/// Builds the server's outbound frames as plain `ByteBuffer`s, header written in place in front of the payload.
///
/// Written by hand instead of using NIO's `WebSocketFrameEncoder` because of what that costs per message, measured
/// with agenthost-bench and perf: the encoder takes a `WebSocketFrame`, too large for `NIOAny`'s inline storage, so
/// every write boxes it on the heap and dynamic-casts it on both sides; and by the time the encoder sees the payload
/// its buffer is shared, so the header always goes out as a second buffer. The host copies every plugin message
/// into a fresh buffer anyway: reserving ten bytes in front and writing the (unmasked, server-side) header there
/// makes each message one allocation and one `IOData`. Inbound frames are read by `WebSocketFrameParser`.
enum WebSocketFrameWriter {
    /// Server frames are not masked: the header is at most 2 + 8 bytes.
    static let maxHeaderSize = 10

    /// A buffer for a `payloadSize`-byte payload with room for the header in front; write the payload, then call
    /// `finishFrame`.
    static func makeBuffer(payloadSize: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payloadSize + self.maxHeaderSize)
        buffer.moveWriterIndex(forwardBy: self.maxHeaderSize)
        buffer.moveReaderIndex(forwardBy: self.maxHeaderSize)
        return buffer
    }

    /// Writes the header for the payload between readerIndex and writerIndex into the room in front of it.
    static func finishFrame(_ buffer: inout ByteBuffer, opcode: WebSocketOpcode, fin: Bool = true) {
        let length = buffer.readableBytes
        let first = UInt8(fin ? 0x80 : 0) | UInt8(webSocketOpcode: opcode)
        let start: Int
        if length <= 125 {
            start = buffer.readerIndex - 2
            buffer.setInteger(first, at: start)
            buffer.setInteger(UInt8(length), at: start + 1)
        } else if length <= Int(UInt16.max) {
            start = buffer.readerIndex - 4
            buffer.setInteger(first, at: start)
            buffer.setInteger(UInt8(126), at: start + 1)
            buffer.setInteger(UInt16(length), at: start + 2)
        } else {
            start = buffer.readerIndex - 10
            buffer.setInteger(first, at: start)
            buffer.setInteger(UInt8(127), at: start + 1)
            buffer.setInteger(UInt64(length), at: start + 2)
        }
        buffer.moveReaderIndex(to: start)
    }

    /// A complete frame holding a copy of `payload`.
    static func frame(opcode: WebSocketOpcode, payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = self.makeBuffer(payloadSize: payload.readableBytes, allocator: allocator)
        buffer.writeImmutableBuffer(payload)
        self.finishFrame(&buffer, opcode: opcode)
        return buffer
    }

    /// A close frame: the code (none for an empty close) and a UTF-8 reason.
    static func closeFrame(code: UInt16?, reason: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = self.makeBuffer(payloadSize: 2 + reason.utf8.count, allocator: allocator)
        if let code {
            buffer.writeInteger(code)
            buffer.writeString(reason)
        }
        self.finishFrame(&buffer, opcode: .connectionClose)
        return buffer
    }
}
