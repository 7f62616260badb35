import AgentHostCore
import AgentHostPlugins
import Foundation
import Glibc
import NIOSSL
import Testing

/// wss:// with a CA made at test time: the real binary's listening line, untrusted clients, mTLS identities, and
/// certificate reloads on SIGHUP that refuse a bad pair.
@Suite("TLS", .serialized)
struct TLSTests {
    static func echoDirectory() async throws -> String {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory)
        return directory
    }

    /// The one-packet crash over TLS: the upgrade request and a first frame in one TLS record.
    @Test func aFrameInTheSameRecordAsTheUpgradeRequestIsServed() async throws {
        let pki = try TestCertificates()
        let server = try await ServerProcess.start(arguments: ["--plugins", try await Self.echoDirectory(),
                                                   "--tls-cert", pki.certificate("server"),
                                                   "--tls-key", pki.key("server")])
        defer { server.signal(SIGKILL) }
        let client = try await RawWebSocketClient.connectTCP(port: server.port, tls: try pki.clientContext())
        let early = RawWebSocketClient.encode(opcode: 0x1, payload: Array("early over TLS".utf8))
        try await client.sendRaw(HandshakeHardeningTests.upgradeRequest() + early)
        #expect(try await withTimeout { try await client.readHTTPStatus() } == 101)
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "early over TLS")
        #expect(server.process.isRunning)
    }

    /// The bare NIO baseline route (the benchmark's yardstick) is the one pipeline that writes `WebSocketFrame`s
    /// through NIO's encoder; plugin routes go without it. Over ws and wss: echo, ping answered, close answered.
    @Test func theBaselineRouteKeepsNIOsEncoderOverWSAndWSS() async throws {
        let pki = try TestCertificates()
        let tlsArguments = ["--tls-cert", pki.certificate("server"), "--tls-key", pki.key("server")]
        for tls in [false, true] {
            let server = try await ServerProcess.start(arguments: ["--plugins", try await Self.echoDirectory(),
                                                       "--baseline-echo-route", "/_baseline/echo"]
                                                       + (tls ? tlsArguments : []))
            defer { server.signal(SIGKILL) }
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/_baseline/echo",
                                                              tls: tls ? try pki.clientContext() : nil)
            try await client.sendText("through NIO's encoder")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "through NIO's encoder")
            try await client.sendFrame(opcode: 0x9, payload: Array("are you there".utf8))
            let pong = try await withTimeout { try await client.readFrame() }
            #expect(pong.opcode == 0xA && pong.text == "are you there", "tls: \(tls)")
            try await client.sendClose(code: 1000)
            #expect(try await withTimeout { try await client.readFrame() }.closeCode == 1000, "tls: \(tls)")
            #expect(server.process.isRunning)
        }
    }

    @Test func servesWSSAndRefusesOnlyClientsThatDoNotTrustIt() async throws {
        let pki = try TestCertificates()
        let live = try PluginFixtures.makeDirectory()
        try FileManager.default.copyItem(atPath: pki.certificate("server"), toPath: "\(live)/cert.pem")
        try FileManager.default.copyItem(atPath: pki.key("server"), toPath: "\(live)/key.pem")
        let server = try await ServerProcess.start(arguments: ["--plugins", try await Self.echoDirectory(),
                                                   "--tls-cert", "\(live)/cert.pem", "--tls-key", "\(live)/key.pem"])
        defer { server.signal(SIGKILL) }
        #expect(server.listeningLine == "agenthost listening on wss://127.0.0.1:\(server.port)")

        let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo", tls: try pki.clientContext())
        try await client.sendText("over TLS")
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "over TLS")
        #expect(try await client.peerCertificate()?.description.contains("localhost") == true)

        // A client that does not trust the host's certificate cannot complete the handshake...
        await #expect(throws: (any Error).self) {
            let untrusting = try await RawWebSocketClient.connectTCP(port: server.port, tls: try pki.clientContext(trustingTestCA: false))
            _ = try await withTimeout { try await untrusting.handshake(path: "/echo") }
        }
        // ...and a plain-text client gets nothing served; neither disturbs the others.
        let plain = try await RawWebSocketClient.connectTCP(port: server.port)
        await #expect(throws: (any Error).self) { _ = try await withTimeout(seconds: 5) { try await plain.handshake(path: "/echo") } }
        try await client.sendText("still fine")
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "still fine")

        // SIGHUP with a broken pair: refused, the certificate in service stays.
        try Data("not a key".utf8).write(to: URL(fileURLWithPath: "\(live)/key.pem"))
        server.signal(SIGHUP)
        try await Task.sleep(for: .milliseconds(300))
        let afterBadReload = try await RawWebSocketClient.connect(port: server.port, path: "/echo", tls: try pki.clientContext())
        let served = try await afterBadReload.peerCertificate()?.description ?? ""
        #expect(served.contains("localhost") && !served.contains("localhost-renewed"), "\(served)")
        #expect(server.logText.contains("TLS reload refused"))

        // SIGHUP with a renewed pair: new connections get it.
        try FileManager.default.removeItem(atPath: "\(live)/cert.pem")
        try FileManager.default.removeItem(atPath: "\(live)/key.pem")
        try FileManager.default.copyItem(atPath: pki.certificate("server2"), toPath: "\(live)/cert.pem")
        try FileManager.default.copyItem(atPath: pki.key("server2"), toPath: "\(live)/key.pem")
        server.signal(SIGHUP)
        var renewed = false
        for _ in 0..<100 where !renewed {
            try await Task.sleep(for: .milliseconds(20))
            let probe = try await RawWebSocketClient.connect(port: server.port, path: "/echo", tls: try pki.clientContext())
            renewed = try await probe.peerCertificate()?.description.contains("localhost-renewed") == true
        }
        #expect(renewed)
        try await client.sendText("old connection")
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "old connection")
    }

    @Test func refusesAMismatchedCertificateAndKeyAtStartup() throws {
        let pki = try TestCertificates()
        #expect(throws: TLSContextProvider.LoadError.self) {
            _ = try TLSContextProvider(settings: TLSSettings(certificateChainFile: pki.certificate("server"),
                                                             privateKeyFile: pki.key("client")))
        }
    }

    @Test func mutualTLSMakesTheCertificateSubjectTheIdentity() async throws {
        let pki = try TestCertificates()
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("lifecycle_recorder", into: directory)
        let tls = try TLSContextProvider(settings: TLSSettings(
            certificateChainFile: pki.certificate("server"), privateKeyFile: pki.key("server"),
            clientCAFile: pki.caCertificate))
        try await TestServer.with(pluginDirectory: directory, configure: { $0.tls = tls }) { server in
            await #expect(throws: (any Error).self) {
                let anonymous = try await RawWebSocketClient.connectTCP(port: server.port, tls: try pki.clientContext())
                _ = try await withTimeout { try await anonymous.handshake(path: "/recorder") }
            }
            let alice = try await RawWebSocketClient.connect(
                port: server.port, path: "/recorder", tls: try pki.clientContext(withClientCertificate: true))
            try await alice.sendText("who am i")
            #expect(try await withTimeout { try await alice.readMessageOrClose() }.text == "who am i")
            let opens = try #require(server.loaded.first).recordedLines().filter { $0.hasPrefix("open") }
            #expect(opens.count == 1)
            #expect(opens.first?.contains("sub=CN=alice") == true, "\(opens)")
        }
    }
}
