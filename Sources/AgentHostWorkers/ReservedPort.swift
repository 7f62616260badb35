import Glibc
import NIOCore

/// The port the workers listen on, held by the supervisor: a socket bound with SO_REUSEPORT but never listening,
/// so it takes no connection (only listening sockets of a reuseport group do) while no process of another user
/// can take the port between a worker's death and its successor's bind. It also turns port 0 into one real port
/// every worker binds.
public struct ReservedPort: Sendable {
    public let fd: CInt
    /// The bound address, with the real port (the configured port may be 0).
    public let address: SocketAddress

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Binds `host:port` (blocking name resolution: called once, at start).
    ///
    /// First without SO_REUSEPORT, which fails if any socket holds the port, reuseport or not: another server of
    /// the same user started with `--workers` would otherwise share the port with us silently. That probe also
    /// turns port 0 into a real port; then the reserving socket binds it with SO_REUSEPORT.
    public static func bind(host: String, port: Int) throws -> ReservedPort {
        let requested = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let probe = try Self.bound(requested, reusePort: false, host: host, port: port)
        let freePort = try Self.localPort(probe)
        close(probe)
        let address = try SocketAddress.makeAddressResolvingHost(requested.ipAddress ?? host, port: freePort)
        let fd = try Self.bound(address, reusePort: true, host: host, port: port)
        return ReservedPort(fd: fd, address: address)
    }

    private static func bound(_ address: SocketAddress, reusePort: Bool, host: String, port: Int) throws -> CInt {
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<CInt>.size)) }
        let bound = address.withSockAddr { pointer, size in Glibc.bind(fd, pointer, socklen_t(size)) }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "cannot listen on \(host):\(port): \(String(cString: strerror(code)))")
        }
        return fd
    }

    private static func localPort(_ fd: CInt) throws -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            close(fd)
            throw Failure(description: "getsockname failed: errno \(errno)")
        }
        // sin_port and sin6_port sit at the same offset, in network byte order.
        return Int(withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) })
    }

    /// Frees the port (at the end of a drain).
    public func release() {
        close(self.fd)
    }
}
