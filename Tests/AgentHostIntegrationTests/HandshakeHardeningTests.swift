import AgentHostClientSupport
import AgentHostCore
import Foundation
import Glibc
import NIOCore
import Testing

/// Bytes that arrive together with an upgrade request (a client's first frame, a pipelined request, garbage) must
/// neither crash the host nor get lost: once the upgrade is accepted they are WebSocket frames.
@Suite("Handshake hardening")
struct HandshakeHardeningTests {
    static func upgradeRequest(path: String = "/echo", extraHeaders: [String] = []) -> [UInt8] {
        var request = "GET \(path) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for header in extraHeaders { request += header + "\r\n" }
        return Array((request + "\r\n").utf8)
    }

    /// The finding as reported, against the real binary: each of these trailers, in the same write as the upgrade
    /// request, aborted the process (`tried to decode as type HTTPPart but found IOData` in the upgrade guard).
    @Test func bytesInTheSameSegmentAsTheUpgradeRequestReachTheWebSocketLayer() async throws {
        let server = try await ServerProcess.start(arguments: ["--plugins", try ServerProcessTests.builtPluginDirectory()])
        let bystander = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        let early = RawWebSocketClient.encode(opcode: 0x1, payload: Array("sent with the handshake".utf8))
        let close = RawWebSocketClient.encode(opcode: 0x8, payload: [0x03, 0xE8])
        let cases: [(name: String, trailer: [UInt8], expect: [(opcode: UInt8, text: String?, code: UInt16?)])] = [
            ("a NUL", [0], []),
            ("an early text frame", early, [(0x1, "sent with the handshake", nil)]),
            ("a frame and a close", early + close, [(0x1, "sent with the handshake", nil), (0x8, nil, 1000)]),
            // Read as a frame ("GE": RSV1 set, unmasked, 69 bytes of payload) once 71 bytes are in: the upgraded
            // connection fails with 1002.
            ("a pipelined GET", Array("GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: a-pipelined-request-of-71-bytes\r\n\r\n".utf8),
             [(0x8, nil, 1002)]),
        ]
        for (name, trailer, expected) in cases {
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            try await client.sendRaw(Self.upgradeRequest() + trailer)
            let status = try await withTimeout { try await client.readHTTPStatus() }
            #expect(status == 101, "\(name)")
            for frame in expected {
                let got = try await withTimeout { try await client.readMessageOrClose() }
                #expect(got.opcode == frame.opcode, "\(name): \(got)")
                if let text = frame.text { #expect(got.text == text, "\(name)") }
                if let code = frame.code { #expect(got.closeCode == code, "\(name)") }
            }
            await client.close()
            #expect(server.process.isRunning, "\(name) killed the server: \(server.logText)")
            try await bystander.sendText("still here after \(name)")
            #expect(try await withTimeout { try await bystander.readMessageOrClose() }.text == "still here after \(name)")
        }
        #expect(try await server.get("/healthz").status == 200)
        await bystander.close()
        server.signal(SIGTERM)
        _ = try await server.waitForExit()
    }

    /// The same through the authenticating path, where the guard holds the request while credentials are checked.
    @Test func anEarlyFrameWaitsForAuthenticationAndIsServed() async throws {
        let authenticator = try await TokenAuthenticatorTests.hmacAuthenticator()
        let token = try AuthenticationTests.token()
        try await Self.withEchoServer(configure: { $0.authenticator = authenticator }) { server in
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            let early = RawWebSocketClient.encode(opcode: 0x1, payload: Array("early".utf8))
            try await client.sendRaw(Self.upgradeRequest(extraHeaders: ["Authorization: Bearer \(token)"]) + early)
            #expect(try await withTimeout { try await client.readHTTPStatus() } == 101)
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "early")
            await client.close()
        }
    }

    /// Random bytes and splits around the end of the upgrade request, with and without an authenticator: the server
    /// answers each connection somehow and keeps serving a bystander. Seeded, so a failure names a reproducible
    /// case.
    @Test(arguments: [false, true])
    func handshakeFuzz(authenticating: Bool) async throws {
        let authenticator = authenticating ? try await TokenAuthenticatorTests.hmacAuthenticator() : nil
        let token = try AuthenticationTests.token()
        try await Self.withEchoServer(configure: { $0.authenticator = authenticator }) { server in
            let bystander = try await RawWebSocketClient.connect(
                port: server.port, path: "/echo", extraHeaders: ["Authorization: Bearer \(token)"])
            let seed = UInt64(authenticating ? 0xA11CE : 0xB0B)
            var random = SplitMix64(seed: seed)
            for iteration in 0..<150 {
                let fuzzCase = HandshakeFuzzCase.make(
                    using: &random, request: Self.upgradeRequest(extraHeaders: ["Authorization: Bearer \(token)"]))
                let client = try await RawWebSocketClient.connectTCP(port: server.port)
                // The server may answer a damaged request and close before the last piece is out.
                for piece in fuzzCase.pieces {
                    do { try await client.sendRaw(piece) } catch { if fuzzCase.expectsEcho { throw error } else { break } }
                }
                if fuzzCase.expectsEcho {
                    // An intact request followed by a whole frame: the frame must be served, not lost.
                    #expect(try await withTimeout { try await client.readHTTPStatus() } == 101,
                            "seed \(seed) iteration \(iteration): \(fuzzCase)")
                    let frame = try await withTimeout { try await client.readMessageOrClose() }
                    #expect(frame.text == fuzzCase.echoText, "seed \(seed) iteration \(iteration): \(fuzzCase)")
                } else {
                    // Whatever the answer, it must come (or the connection be closed); the server decides when.
                    await client.finishSending()
                    _ = try? await withTimeout(seconds: 5) { try await client.readToEnd() }
                }
                await client.close()
            }
            try await bystander.sendText("bystander")
            #expect(try await withTimeout { try await bystander.readMessageOrClose() }.text == "bystander")
            let health = try await RawWebSocketClient.connectTCP(port: server.port)
            try await health.sendRaw(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(try await withTimeout { try await health.readHTTPStatus() } == 200)
            await health.close()
        }
    }

    static func withEchoServer(configure: (inout ServerConfiguration) -> Void,
                               _ body: (TestServer) async throws -> Void) async throws {
        try await ServerTests.withEchoServer(configure: configure, body)
    }
}

/// One generated handshake: an upgrade request, maybe damaged, something after it, cut in pieces near its end.
struct HandshakeFuzzCase: CustomStringConvertible {
    var pieces: [[UInt8]]
    var expectsEcho: Bool
    var echoText: String

    static func make(using random: inout SplitMix64, request: [UInt8]) -> HandshakeFuzzCase {
        var bytes = request
        let damaged = random.next(upTo: 4) == 0
        if damaged {
            // Overwrite a few bytes of the request with anything.
            for _ in 0...random.next(upTo: 3) {
                bytes[Int(random.next(upTo: UInt64(bytes.count)))] = UInt8(truncatingIfNeeded: random.next())
            }
        }
        let echoText = "fuzz \(random.next(upTo: 1_000_000))"
        var trailerIsFrame = false
        switch random.next(upTo: 4) {
        case 0:
            break
        case 1:
            let count = Int(random.next(upTo: 48))
            bytes += (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        case 2:
            bytes += RawWebSocketClient.encode(opcode: 0x1, payload: Array(echoText.utf8))
            trailerIsFrame = true
        default:
            bytes += Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        }
        // Cut points: always one within a few bytes of the request's end, and up to two anywhere.
        var cuts: Set<Int> = [min(bytes.count, max(1, request.count + Int(random.next(upTo: 7)) - 3))]
        for _ in 0..<random.next(upTo: 3) { cuts.insert(Int(random.next(upTo: UInt64(bytes.count))) + 1) }
        var pieces: [[UInt8]] = []
        var start = 0
        for cut in cuts.sorted() where cut > start && cut < bytes.count {
            pieces.append(Array(bytes[start..<cut]))
            start = cut
        }
        pieces.append(Array(bytes[start...]))
        return HandshakeFuzzCase(pieces: pieces, expectsEcho: !damaged && trailerIsFrame, echoText: echoText)
    }

    var description: String {
        "pieces \(self.pieces.map { String(decoding: $0, as: UTF8.self).debugDescription })"
    }
}

/// A small seeded generator (SplitMix64): the fuzz cases are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func next(upTo bound: UInt64) -> UInt64 { self.next() % bound }
}
