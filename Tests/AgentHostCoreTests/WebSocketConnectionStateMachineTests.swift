import NIOCore
import NIOWebSocket
import Testing

@testable import AgentHostCore

@Suite("WebSocket state machine")
struct WebSocketConnectionStateMachineTests {
    static let mask = WebSocketMaskingKey([1, 2, 3, 4] as [UInt8])!

    /// A client frame: masked, as RFC 6455 requires.
    static func frame(_ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true, masked: Bool = true) -> WebSocketFrame {
        var data = ByteBuffer(bytes: bytes)
        if masked { data.webSocketMask(mask) }
        return WebSocketFrame(fin: fin, opcode: opcode, maskKey: masked ? mask : nil, data: data)
    }

    static func text(_ string: String, fin: Bool = true) -> WebSocketFrame { frame(.text, Array(string.utf8), fin: fin) }

    var machine = WebSocketConnectionStateMachine(maxMessageSize: 64)

    /// A continuation is appended in place: the message's buffer moves only when it has to grow, never to copy a
    /// buffer still referenced elsewhere (that made every continuation copy the whole message so far: a large first
    /// fragment, then tiny continuations, kept the server copying megabytes per frame).
    @Test func continuationsAppendInPlace() {
        var machine = WebSocketConnectionStateMachine(maxMessageSize: 1 << 20)
        #expect(machine.receive(Self.frame(.binary, Array(repeating: 7, count: 1000), fin: false)) == .none)
        #expect(machine.receive(Self.frame(.continuation, [1], fin: false)) == .none)  // the first append copies
        var moves = 0
        for _ in 0..<200 {
            let before = machine.messageStorage!
            #expect(machine.receive(Self.frame(.continuation, [1], fin: false)) == .none)
            let after = machine.messageStorage!
            if after.address != before.address && after.capacity == before.capacity { moves += 1 }
        }
        #expect(moves == 0)
        guard case .deliver(.binary, let message) = machine.receive(Self.frame(.continuation, [2])) else {
            Issue.record("no message")
            return
        }
        #expect(message.readableBytes == 1202)
    }

    @Test mutating func deliversSingleFrameMessagesUnmasked() {
        do { let action = self.machine.receive(Self.text("hello")); #expect(action == .deliver(.text, ByteBuffer(string: "hello"))) }
        do { let action = self.machine.receive(Self.frame(.binary, [9, 8])); #expect(action == .deliver(.binary, ByteBuffer(bytes: [9, 8]))) }
    }

    @Test mutating func joinsFragmentsWithControlFramesInBetween() {
        do { let action = self.machine.receive(Self.text("ab", fin: false)); #expect(action == .none) }
        do { let action = self.machine.receive(Self.frame(.ping, [1])); #expect(action == .sendPong(ByteBuffer(bytes: [1]))) }
        do { let action = self.machine.receive(Self.frame(.continuation, Array("cd".utf8), fin: false)); #expect(action == .none) }
        do { let action = self.machine.receive(Self.frame(.pong, [])); #expect(action == .none) }
        do { let action = self.machine.receive(Self.frame(.continuation, Array("e".utf8))); #expect(action == .deliver(.text, ByteBuffer(string: "abcde"))) }
    }

    @Test mutating func failsInvalidUTF8AtTheFragmentThatBreaksIt() {
        do { let action = self.machine.receive(Self.frame(.text, [0xE2, 0x82], fin: false)); #expect(action == .none) }
        do { let action = self.machine.receive(Self.frame(.continuation, [0x28], fin: false)); #expect(action
                == .fail(code: 1007, failure: .invalidData("text message is not UTF-8"))) }
        #expect(self.machine.state == .closed)
    }

    @Test mutating func failsATextMessageThatEndsMidCharacter() {
        do { let action = self.machine.receive(Self.frame(.text, [0xE2, 0x82], fin: false)); #expect(action == .none) }
        guard case .fail(1007, _) = self.machine.receive(Self.frame(.continuation, [])) else {
            Issue.record("expected 1007")
            return
        }
    }

    @Test mutating func failsMessagesOverTheLimit() {
        do { let action = self.machine.receive(Self.frame(.binary, [UInt8](repeating: 0, count: 40), fin: false)); #expect(action == .none) }
        guard case .fail(1009, .tooLarge) = self.machine.receive(Self.frame(.continuation, [UInt8](repeating: 0, count: 40)))
        else {
            Issue.record("expected 1009")
            return
        }
    }

    /// A message of a single frame counts against the message limit too (the frame limit may be larger).
    @Test(arguments: [WebSocketOpcode.text, .binary])
    func failsASingleFrameMessageOverTheLimit(opcode: WebSocketOpcode) {
        var machine = WebSocketConnectionStateMachine(maxMessageSize: 64)
        guard case .fail(1009, .tooLarge) = machine.receive(Self.frame(opcode, [UInt8](repeating: 0x61, count: 65))) else {
            Issue.record("expected 1009")
            return
        }
        var exact = WebSocketConnectionStateMachine(maxMessageSize: 64)
        guard case .deliver = exact.receive(Self.frame(opcode, [UInt8](repeating: 0x61, count: 64))) else {
            Issue.record("64 bytes fit")
            return
        }
    }

    @Test(arguments: [
        ("unmasked", frame(.text, [0x61], masked: false)),
        ("continuation first", frame(.continuation, [0x61])),
        ("reserved opcode", frame(WebSocketOpcode(encodedWebSocketOpcode: 0x3)!, [])),
        ("close with one byte", frame(.connectionClose, [0x03])),
        ("close code 1006", frame(.connectionClose, [0x03, 0xEE])),
        ("close code 2999", frame(.connectionClose, [0x0B, 0xB7])),
    ])
    func failsProtocolErrorsWith1002(name: String, frame: WebSocketFrame) {
        var machine = WebSocketConnectionStateMachine(maxMessageSize: 64)
        guard case .fail(1002, .protocolError) = machine.receive(frame) else {
            Issue.record("\(name): expected 1002")
            return
        }
    }

    @Test mutating func refusesANewMessageInsideAFragmentedOne() {
        _ = self.machine.receive(Self.text("a", fin: false))
        guard case .fail(1002, _) = self.machine.receive(Self.text("b")) else {
            Issue.record("expected 1002")
            return
        }
    }

    @Test mutating func answersAPeerCloseWithItsCode() {
        var payload: [UInt8] = [0x0F, 0xA0]  // 4000
        payload += Array("bye".utf8)
        do { let action = self.machine.receive(Self.frame(.connectionClose, payload)); #expect(action
                == .peerClosed(code: 4000, reason: "bye", replyCode: 4000)) }
        do { let action = self.machine.receive(Self.text("late")); #expect(action == .none) }
    }

    @Test mutating func answersAnEmptyCloseWithAnEmptyClose() {
        do { let action = self.machine.receive(Self.frame(.connectionClose, [])); #expect(action == .peerClosed(code: 1005, reason: "", replyCode: nil)) }
    }

    @Test mutating func failsACloseReasonThatIsNotUTF8() {
        guard case .fail(1007, _) = self.machine.receive(Self.frame(.connectionClose, [0x03, 0xE8, 0xFF])) else {
            Issue.record("expected 1007")
            return
        }
    }

    @Test mutating func ignoresDataAfterOurCloseAndCompletesOnTheReply() {
        let first = self.machine.closeInitiated(code: 1001, reason: "going")
        let second = self.machine.closeInitiated(code: 1000, reason: "")
        #expect(first && !second)
        do { let action = self.machine.receive(Self.text("ignored")); #expect(action == .none) }
        do { let action = self.machine.receive(Self.frame(.ping, [])); #expect(action == .none) }
        do { let action = self.machine.receive(Self.frame(.connectionClose, [0x03, 0xE9])); #expect(action
                == .closeHandshakeCompleted(code: 1001, reason: "going")) }
    }
}
