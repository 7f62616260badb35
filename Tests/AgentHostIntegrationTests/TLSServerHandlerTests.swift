@testable import AgentHostCore
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

/// The server's own TLS handler against swift-nio-ssl's client, both in EmbeddedChannels, bytes pumped between them
/// by hand: every record boundary and every buffer the handler keeps is visible.
@Suite("TLS server handler")
struct TLSServerHandlerTests {
    final class Pair {
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()
        let handler: TLSServerHandler
        /// Ciphertext writes the server made, in order (to see how many socket writes a flush costs).
        var serverWrites: [Int] = []

        init(pki: TestCertificates, clientCertificate: Bool = false) throws {
            let provider = try TLSContextProvider(settings: TLSSettings(
                certificateChainFile: pki.certificate("server"), privateKeyFile: pki.key("server"),
                clientCAFile: clientCertificate ? pki.caCertificate : nil))
            self.handler = TLSServerHandler(context: provider.current)
            try self.server.pipeline.syncOperations.addHandler(self.handler)
            try self.client.pipeline.syncOperations.addHandler(NIOSSLClientHandler(
                context: pki.clientContext(withClientCertificate: clientCertificate), serverHostname: "localhost"))
            try self.server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try self.client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
            try self.pump()
        }

        /// Moves bytes both ways until neither side has anything to send. `chunk` splits the client's bytes into
        /// pieces of that size, so records arrive cut at arbitrary points.
        func pump(chunk: Int = .max) throws {
            var moved = true
            while moved {
                moved = false
                while let bytes = try self.client.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    var rest = bytes
                    while rest.readableBytes > 0, self.server.isActive {
                        let piece = rest.readSlice(length: min(chunk, rest.readableBytes))!
                        try self.server.writeInbound(piece)
                    }
                }
                while let bytes = try self.server.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    self.serverWrites.append(bytes.readableBytes)
                    if self.client.isActive { try self.client.writeInbound(bytes) }
                }
            }
        }

        func serverReceived() throws -> [UInt8] {
            var bytes: [UInt8] = []
            while let buffer = try self.server.readInbound(as: ByteBuffer.self) { bytes += Array(buffer.readableBytesView) }
            return bytes
        }

        func clientReceived() throws -> [UInt8] {
            var bytes: [UInt8] = []
            while let buffer = try self.client.readInbound(as: ByteBuffer.self) { bytes += Array(buffer.readableBytesView) }
            return bytes
        }
    }

    @Test func dataCrossesBothWaysAndAnIdleConnectionHoldsNoBuffer() throws {
        let pki = try TestCertificates()
        let pair = try Pair(pki: pki)
        #expect(pair.handler.heldBufferCapacity == 0)

        try pair.client.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")).wait()
        try pair.pump()
        #expect(try pair.serverReceived() == Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(pair.handler.heldBufferCapacity == 0)

        try pair.server.writeAndFlush(ByteBuffer(string: "HTTP/1.1 101\r\n\r\n")).wait()
        try pair.pump()
        #expect(try pair.clientReceived() == Array("HTTP/1.1 101\r\n\r\n".utf8))
        #expect(pair.handler.heldBufferCapacity == 0)
    }

    @Test func aLargeMessageCutAtEveryFewBytesArrivesWhole() throws {
        let pki = try TestCertificates()
        let pair = try Pair(pki: pki)
        let message = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try pair.client.writeAndFlush(ByteBuffer(bytes: message)).wait()
        try pair.pump(chunk: 7)
        #expect(try pair.serverReceived() == message)
        // Only a record still being assembled is held; once it is whole, nothing is.
        #expect(pair.handler.heldBufferCapacity == 0)

        try pair.server.writeAndFlush(ByteBuffer(bytes: message)).wait()
        try pair.pump()
        #expect(try pair.clientReceived() == message)
    }

    @Test func writesBeforeAFlushLeaveAsOneSocketWriteAndCompleteTheirPromises() throws {
        let pki = try TestCertificates()
        let pair = try Pair(pki: pki)
        pair.serverWrites = []
        let futures = (0..<10).map { pair.server.write(ByteBuffer(string: "message \($0);")) }
        try pair.pump()
        #expect(pair.serverWrites.isEmpty, "nothing leaves before the flush")
        pair.server.flush()
        try pair.pump()
        #expect(pair.serverWrites.count == 1)
        for future in futures { try future.wait() }
        #expect(String(decoding: try pair.clientReceived(), as: UTF8.self)
                == (0..<10).map { "message \($0);" }.joined())
    }

    @Test func plaintextOnTheTLSPortIsRefusedWithAReason() throws {
        let pki = try TestCertificates()
        let provider = try TLSContextProvider(settings: TLSSettings(
            certificateChainFile: pki.certificate("server"), privateKeyFile: pki.key("server")))
        let server = EmbeddedChannel(handler: TLSServerHandler(context: provider.current))
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect {
            try server.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        } throws: { error in
            (error as? TLSError)?.stage == .handshake
        }
        #expect(!server.isActive)
    }

    @Test func eachSideSeesTheOthersCloseNotify() throws {
        let pki = try TestCertificates()
        let fromClient = try Pair(pki: pki)
        fromClient.client.close(promise: nil)
        try fromClient.pump()
        #expect(!fromClient.server.isActive, "the server closes when the client's close_notify arrives")

        let fromServer = try Pair(pki: pki)
        let closed = fromServer.server.close()
        try fromServer.pump()
        try closed.wait()
        // swift-nio-ssl's client answers a close_notify with its own and closes.
        #expect(!fromServer.client.isActive)
    }

    @Test func theVerifiedClientCertificateIsAvailableAfterTheHandshake() throws {
        let pki = try TestCertificates()
        let pair = try Pair(pki: pki, clientCertificate: true)
        let der = try #require(pair.handler.peerCertificateDER())
        #expect(TLSContextProvider.identity(ofDER: der)?.subject == "CN=alice")
    }
}
