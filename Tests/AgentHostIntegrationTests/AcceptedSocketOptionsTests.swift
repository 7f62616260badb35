import Foundation
import Glibc
import Testing

/// The options the server sets on each connection it accepts, read back from its end of a real connection.
@Suite("Accepted sockets")
struct AcceptedSocketOptionsTests {
    /// `.socketOption(.tcp_nodelay)` is option 1 at SOL_SOCKET, which is SO_DEBUG: root got debugging turned on, and
    /// any other user had every connection closed at accept (EACCES) without a word logged.
    @Test("accepted connections get TCP_NODELAY and never SO_DEBUG")
    func noDelayNotDebug() async throws {
        try await ServerTests.withEchoServer { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            let clientPort = try #require(client.localPort)
            let descriptor = try #require(Self.serverDescriptor(serverPort: server.port, clientPort: clientPort))
            #expect(Self.option(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY) == 1)
            #expect(Self.option(descriptor, SOL_SOCKET, SO_DEBUG) == 0)
            await client.close()
        }
    }

    /// This process's socket bound to `serverPort` whose peer is `clientPort`: the server's end.
    static func serverDescriptor(serverPort: Int, clientPort: Int) -> Int32? {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in descriptors.compactMap(Int32.init) {
            if Self.port(descriptor, getsockname) == serverPort, Self.port(descriptor, getpeername) == clientPort {
                return descriptor
            }
        }
        return nil
    }

    static func port(_ descriptor: Int32,
                     _ name: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> Int? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { name(descriptor, $0, &length) }
        }
        guard result == 0, address.sin_family == sa_family_t(AF_INET) else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func option(_ descriptor: Int32, _ level: Int32, _ name: Int32) -> Int32 {
        var value: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(descriptor, level, name, &value, &length) == 0 ? value : -1
    }
}
