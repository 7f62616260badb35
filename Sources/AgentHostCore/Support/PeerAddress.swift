import NIOCore

/// A peer's address as plugins see it: "127.0.0.1:53211" or "[::1]:53211".
enum PeerAddress {
    static func text(_ address: SocketAddress?) -> String {
        switch address {
        case .v4(let v4)?: return "\(v4.host):\(address?.port ?? 0)"
        case .v6(let v6)?: return "[\(v6.host)]:\(address?.port ?? 0)"
        case let other?: return "\(other)"
        case nil: return ""
        }
    }
}
