import NIOCore

/// The client side of RFC 6455 framing, for AgentHost's own clients (the benchmarks' load clients and the tests'
/// raw client): masked frames out, whole server frames in. The host decodes with NIO; its clients need neither an
/// upgrader pipeline nor NIO's frame types, and each of them reads frames with its own buffer.
public enum WebSocketClientFrame {
    /// A frame as a client sends it (masked unless `masked` is false, which tests use to break the rules).
    public static func encode(opcode: UInt8, payload: some Collection<UInt8>, fin: Bool = true, rsv: UInt8 = 0,
                              masked: Bool = true) -> [UInt8]
    {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode]
        bytes.reserveCapacity(payload.count + 14)
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            bytes.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes.append(maskBit | 126)
            bytes += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            bytes.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        guard masked else { return bytes + payload }
        let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        bytes += key
        for (index, byte) in payload.enumerated() { bytes.append(byte ^ key[index & 3]) }
        return bytes
    }

    /// Where the next server frame in `view` lies; nil until all of it has arrived. Server frames are unmasked.
    public struct Header: Sendable {
        public var fin: Bool
        public var opcode: UInt8
        public var headerLength: Int
        public var payloadLength: Int
    }

    public static func header(in view: ByteBufferView) -> Header? {
        guard view.count >= 2 else { return nil }
        let first = view[view.startIndex], second = view[view.startIndex + 1]
        var length = Int(second & 0x7F)
        var headerLength = 2
        if length == 126 {
            guard view.count >= 4 else { return nil }
            length = Int(view[view.startIndex + 2]) << 8 | Int(view[view.startIndex + 3])
            headerLength = 4
        } else if length == 127 {
            guard view.count >= 10 else { return nil }
            length = 0
            for i in 2..<10 { length = length << 8 | Int(view[view.startIndex + i]) }
            headerLength = 10
        }
        guard view.count >= headerLength + length else { return nil }
        return Header(fin: first & 0x80 != 0, opcode: first & 0x0F, headerLength: headerLength, payloadLength: length)
    }
}
