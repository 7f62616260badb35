@testable import AgentHostCore
import Foundation
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS
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
        /// What the client's TLS handler reported (the negotiated ALPN protocol).
        let clientEvents = UserEventRecorder()
        /// Errors each side raised while bytes were pumped (a failed handshake raises them).
        var serverErrors: [any Error] = []
        var clientErrors: [any Error] = []

        /// `client`: the client's TLS context (default: trusts the test CA; with `clientCertificate`, presents
        /// alice's certificate); `verifyClients`: the server requires client certificates from the test CA.
        init(pki: TestCertificates, clientCertificate: Bool = false, verifyClients: Bool? = nil,
             client: NIOSSLContext? = nil) throws {
            let provider = try TLSContextProvider(settings: TLSSettings(
                certificateChainFile: pki.certificate("server"), privateKeyFile: pki.key("server"),
                clientCAFile: (verifyClients ?? clientCertificate) ? pki.caCertificate : nil))
            self.handler = TLSServerHandler(context: provider.current)
            try self.server.pipeline.syncOperations.addHandler(self.handler)
            try self.client.pipeline.syncOperations.addHandler(NIOSSLClientHandler(
                context: client ?? pki.clientContext(withClientCertificate: clientCertificate),
                serverHostname: "localhost"))
            try self.client.pipeline.syncOperations.addHandler(self.clientEvents)
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
                        do { try self.server.writeInbound(piece) } catch { self.serverErrors.append(error) }
                    }
                }
                while let bytes = try self.server.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    self.serverWrites.append(bytes.readableBytes)
                    guard self.client.isActive else { continue }
                    do { try self.client.writeInbound(bytes) } catch { self.clientErrors.append(error) }
                }
            }
        }

        func serverReceived() throws -> [UInt8] {
            var bytes: [UInt8] = []
            while let buffer = try self.server.readInbound(as: ByteBuffer.self) {
                bytes += Array(buffer.readableBytesView)
            }
            return bytes
        }

        func clientReceived() throws -> [UInt8] {
            var bytes: [UInt8] = []
            while let buffer = try self.client.readInbound(as: ByteBuffer.self) {
                bytes += Array(buffer.readableBytesView)
            }
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

    @Test func largeOutputReachesTheChannelBeforeTheFlush() throws {
        // NIO's writability (and so the WebSocket layer's backpressure) counts what was written to the channel.
        let pki = try TestCertificates()
        let pair = try Pair(pki: pki)
        let counter = WriteCounter()
        try pair.server.pipeline.syncOperations.addHandler(counter, position: .first)
        for _ in 0..<10 { pair.server.write(ByteBuffer(repeating: 7, count: 16 * 1024), promise: nil) }
        #expect(counter.bytes >= TLSServerHandler.handOverBytes, "written before any flush: \(counter.bytes)")
        let before = counter.bytes
        pair.server.write(ByteBuffer(string: "small"), promise: nil)
        #expect(counter.bytes == before, "small writes still wait for the flush")
        pair.server.flush()
        try pair.pump()
        #expect(try pair.clientReceived().count == 10 * 16 * 1024 + 5)
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
            // BoringSSL names it; no certificate was involved, so none is blamed.
            guard let error = error as? TLSError else { return false }
            return error.stage == .handshake && error.reason.contains("HTTP_REQUEST")
                && !error.description.contains("certificate")
        }
        #expect(!server.isActive)
    }

    @Test func anEmptyWriteAloneInAFlushCompletesItsPromise() throws {
        let pki = try TestCertificates()
        let pair = try Pair(pki: pki)
        var completed = false
        pair.server.writeAndFlush(ByteBuffer()).whenSuccess { completed = true }
        try pair.pump()
        #expect(completed)
    }

    @Test func aWriteFromAPromiseCompletedByTheCloseFailsAsClosed() throws {
        let pki = try TestCertificates()
        let pair = try Pair(pki: pki)
        var lateWrite: EventLoopFuture<Void>?
        pair.server.write(ByteBuffer(string: "last words")).whenComplete { _ in
            lateWrite = pair.server.writeAndFlush(ByteBuffer(string: "too late"))
        }
        pair.server.close(promise: nil)
        try pair.pump()
        let future = try #require(lateWrite)
        #expect { try future.wait() } throws: { ($0 as? ChannelError) == .ioOnClosedChannel }
        #expect(pair.serverErrors.isEmpty, "no TLS error from a write after close_notify: \(pair.serverErrors)")
        #expect(String(decoding: try pair.clientReceived(), as: UTF8.self) == "last words")
    }

    @Test func aClientLimitedToTLS11IsRefused() throws {
        let pki = try TestCertificates()
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(pki.caCertificate)
        configuration.maximumTLSVersion = .tlsv11
        let pair = try Pair(pki: pki, client: try NIOSSLContext(configuration: configuration))
        #expect(!pair.server.isActive)
        #expect(pair.serverErrors.contains { ($0 as? TLSError)?.reason.contains("PROTOCOL") == true },
                "\(pair.serverErrors)")
    }

    @Test func alpnAnswersHTTP1OnlyWhenOffered() throws {
        let pki = try TestCertificates()
        for (offered, expected) in [(["h2", "http/1.1"], "http/1.1"), (["h2"], nil)] as [([String], String?)] {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(pki.caCertificate)
            configuration.applicationProtocols = offered
            let pair = try Pair(pki: pki, client: try NIOSSLContext(configuration: configuration))
            #expect(pair.server.isActive)
            let negotiated = pair.clientEvents.events.compactMap { event -> String?? in
                if case .handshakeCompleted(let protocolName) = event as? TLSUserEvent { return protocolName }
                return nil
            }
            #expect(negotiated == [expected], "offered \(offered)")
        }
    }

    @Test func anUnusableClientCABundleIsRefusedNamingTheFile() throws {
        let pki = try TestCertificates()
        let bogus = "\(pki.directory)/not-a-ca.pem"
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: bogus))
        #expect {
            try TLSContextProvider(settings: TLSSettings(
                certificateChainFile: pki.certificate("server"), privateKeyFile: pki.key("server"), clientCAFile: bogus))
        } throws: { error in
            "\(error)".contains(bogus) && "\(error)".contains("client CAs")
        }
    }

    @Test func aClientCertificateFromAnotherCAIsRefused() throws {
        let pki = try TestCertificates()
        let stranger = try TestCertificates()  // its own CA
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(pki.caCertificate)
        configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(stranger.certificate("client"))
            .map { .certificate($0) }
        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: stranger.key("client"), format: .pem))
        let pair = try Pair(pki: pki, verifyClients: true, client: try NIOSSLContext(configuration: configuration))
        #expect(!pair.server.isActive)
        #expect(pair.handler.peerCertificateDER() == nil)
        #expect(pair.serverErrors.contains { ($0 as? TLSError)?.description.contains("client certificate") == true },
                "\(pair.serverErrors)")
    }

    @Test func eachSideSeesTheOthersCloseNotify() throws {
        let pki = try TestCertificates()
        let fromClient = try Pair(pki: pki)
        // swift-nio-ssl's client completes its close only when the server's close_notify answers its own (the
        // embedded loop never fires its timeout).
        var clientClosed = false
        fromClient.client.close().whenSuccess { clientClosed = true }
        try fromClient.pump()
        #expect(!fromClient.server.isActive, "the server closes when the client's close_notify arrives")
        #expect(clientClosed, "the server answered the client's close_notify with its own")

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

/// Keeps the user events that pass it.
final class UserEventRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private(set) var events: [Any] = []

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        self.events.append(event)
        context.fireUserInboundEventTriggered(event)
    }
}

/// Counts the bytes written towards the socket (before any flush).
final class WriteCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private(set) var bytes = 0

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.bytes += Self.unwrapOutboundIn(data).readableBytes
        context.write(data, promise: promise)
    }
}
