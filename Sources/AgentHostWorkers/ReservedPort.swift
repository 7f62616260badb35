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
    public static func bind(host: String, port: Int) throws -> ReservedPort {
        let requested = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family = requested.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<CInt>.size))
        let bound = requested.withSockAddr { pointer, size in Glibc.bind(fd, pointer, socklen_t(size)) }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "cannot listen on \(host):\(port): \(String(cString: strerror(code)))")
        }
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
        let boundPort = withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
        let address = try SocketAddress.makeAddressResolvingHost(requested.ipAddress ?? host, port: Int(boundPort))
        return ReservedPort(fd: fd, address: address)
    }

    /// Frees the port (at the end of a drain).
    public func release() {
        close(self.fd)
    }
}
