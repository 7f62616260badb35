import NIOCore
import NIOWebSocket

/// Decides what each inbound frame means under RFC 6455: joins fragments, validates UTF-8 as it arrives, answers
/// control frames and runs the close handshake. Pure: no I/O, no clock, so it is tested without sockets. The
/// handler does what the returned action says.
///
/// `NIOWebSocketFrameAggregator` joins fragments too, but validates no UTF-8 and so cannot fail a bad text message
/// before its last fragment; this machine does both in one pass over each frame.
struct WebSocketConnectionStateMachine {
    enum State: Equatable {
        case open
        /// We sent a close frame with this code and wait for the peer's.
        case closeSent(code: UInt16, reason: String)
        case closed
    }

    enum Action: Equatable {
        case none
        /// Hand a complete message to the session.
        case deliver(WebSocketMessageKind, ByteBuffer)
        /// Answer a ping.
        case sendPong(ByteBuffer)
        /// The peer broke the protocol: send a close frame with `code`, tell the session, drop the connection.
        case fail(code: UInt16, failure: WebSocketFailure)
        /// The peer started the close handshake: echo `replyCode` (nil: an empty close frame), tell the session
        /// `code`/`reason`, then drop the TCP connection.
        case peerClosed(code: UInt16, reason: String, replyCode: UInt16?)
        /// The peer answered our close: the handshake is complete; tell the session our code.
        case closeHandshakeCompleted(code: UInt16, reason: String)
    }

    private enum Fragments {
        case none
        case text(ByteBuffer, UTF8Validator)
        case binary(ByteBuffer)
    }

    private(set) var state: State = .open
    private var fragments: Fragments = .none
    let maxMessageSize: Int

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// We start the close handshake. Returns false if a close already started.
    mutating func closeInitiated(code: UInt16, reason: String) -> Bool {
        guard case .open = self.state else { return false }
        self.state = .closeSent(code: code, reason: reason)
        self.fragments = .none
        return true
    }

    /// The connection is gone (failed, or the transport closed).
    mutating func closed() {
        self.state = .closed
        self.fragments = .none
    }

    mutating func receive(_ frame: WebSocketFrame) -> Action {
        if case .closed = self.state { return .none }
        // Extensions are not negotiated, so reserved bits must be clear (RFC 6455 5.2).
        if frame.rsv1 || frame.rsv2 || frame.rsv3 {
            return self.fail(.protocolError, .protocolError("reserved bit set without a negotiated extension"))
        }
        // Clients must mask every frame (RFC 6455 5.1).
        guard let maskKey = frame.maskKey else {
            return self.fail(.protocolError, .protocolError("client frame not masked"))
        }
        var data = frame.data
        data.webSocketUnmask(maskKey)

        switch frame.opcode {
        case .text, .binary, .continuation:
            return self.receiveData(frame, data: data)
        case .ping:
            if case .open = self.state { return .sendPong(data) }
            return .none
        case .pong:
            return .none
        case .connectionClose:
            return self.receiveClose(data)
        default:
            return self.fail(.protocolError, .protocolError("unknown opcode \(frame.opcode)"))
        }
    }

    private mutating func receiveData(_ frame: WebSocketFrame, data: ByteBuffer) -> Action {
        // After we sent close, data frames are discarded while we wait for the peer's close (RFC 6455 5.5.1).
        guard case .open = self.state else { return .none }

        if frame.opcode == .continuation { return self.continueMessage(frame, data: data) }
        // A text or binary frame starts a message: none may be under way.
        guard case .none = self.fragments else {
            return self.fail(.protocolError, .protocolError("new message started before the previous one finished"))
        }
        // A message of one frame is bounded by max_message_size too, not only by max_frame_size: with a message
        // limit below the frame limit, a single frame between the two was let through.
        guard data.readableBytes <= self.maxMessageSize else { return self.tooLarge() }
        if frame.opcode == .binary {
            if frame.fin { return .deliver(.binary, data) }
            self.fragments = .binary(data)
            return .none
        }
        if frame.fin {
            // The common case: one frame, one message, no copy.
            let valid = data.withUnsafeReadableBytes { UTF8Validator.isValid($0) }
            guard valid else { return self.fail(.invalidPayload, .invalidData("text message is not UTF-8")) }
            return .deliver(.text, data)
        }
        var validator = UTF8Validator()
        guard data.withUnsafeReadableBytes({ validator.feed($0) }) != .invalid else {
            return self.fail(.invalidPayload, .invalidData("text message is not UTF-8"))
        }
        self.fragments = .text(data, validator)
        return .none
    }

    /// Appends a continuation frame to the message under way. The message's buffer must be referenced once when
    /// appended to, or every continuation copies the whole message so far (a client sending a large first fragment
    /// and then tiny continuations made the server copy megabytes per frame): the switch is on `self.fragments`
    /// alone (a tuple holding it kept a second reference for the switch's length), which is cleared before the
    /// append.
    private mutating func continueMessage(_ frame: WebSocketFrame, data: ByteBuffer) -> Action {
        switch self.fragments {
        case .none:
            return self.fail(.protocolError, .protocolError("continuation frame without a message to continue"))

        case .text(var buffer, var validator):
            self.fragments = .none
            guard buffer.readableBytes + data.readableBytes <= self.maxMessageSize else { return self.tooLarge() }
            let result = data.withUnsafeReadableBytes { validator.feed($0) }
            if result == .invalid || (frame.fin && result != .complete) {
                return self.fail(.invalidPayload, .invalidData("text message is not UTF-8"))
            }
            var more = data
            buffer.writeBuffer(&more)
            if frame.fin { return .deliver(.text, buffer) }
            self.fragments = .text(buffer, validator)
            return .none

        case .binary(var buffer):
            self.fragments = .none
            guard buffer.readableBytes + data.readableBytes <= self.maxMessageSize else { return self.tooLarge() }
            var more = data
            buffer.writeBuffer(&more)
            if frame.fin { return .deliver(.binary, buffer) }
            self.fragments = .binary(buffer)
            return .none
        }
    }

    /// Whether a data frame of this opcode and length would take its message past the limit: known from its
    /// header, so the connection is failed before the payload is read into memory.
    func exceedsMessageLimit(opcode: UInt8, length: Int) -> Bool {
        guard case .open = self.state else { return false }
        switch opcode {
        case 0x1, 0x2: return length > self.maxMessageSize
        case 0x0: return (self.messageLength ?? 0) + length > self.maxMessageSize
        default: return false
        }
    }

    private var messageLength: Int? {
        switch self.fragments {
        case .none: return nil
        case .text(let buffer, _), .binary(let buffer): return buffer.readableBytes
        }
    }

    /// Fails the connection for a message over the limit (from the handler, which saw it in a frame's header).
    mutating func refuseTooLarge() -> Action { self.tooLarge() }

    /// Where the message under way is stored, and its capacity (for tests: appending must not move it while the
    /// capacity lasts).
    var messageStorage: (address: UInt, capacity: Int)? {
        switch self.fragments {
        case .none: return nil
        case .text(let buffer, _), .binary(let buffer):
            return (buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }, buffer.capacity)
        }
    }

    private mutating func receiveClose(_ payload: ByteBuffer) -> Action {
        var payload = payload
        let code: UInt16
        var reason = ""
        switch payload.readableBytes {
        case 0:
            code = CloseCode.noStatus
        case 1:
            return self.fail(.protocolError, .protocolError("close frame with a 1-byte payload"))
        default:
            let received = payload.readInteger(as: UInt16.self)!
            guard CloseCode.isSendable(received) else {
                return self.fail(.protocolError, .protocolError("close code \(received) may not be sent"))
            }
            let valid = payload.withUnsafeReadableBytes { UTF8Validator.isValid($0) }
            guard valid else { return self.fail(.invalidPayload, .invalidData("close reason is not UTF-8")) }
            code = received
            reason = payload.readString(length: payload.readableBytes) ?? ""
        }

        switch self.state {
        case .open:
            self.closed()
            return .peerClosed(code: code, reason: reason, replyCode: code == CloseCode.noStatus ? nil : code)
        case .closeSent(let ourCode, let ourReason):
            self.closed()
            return .closeHandshakeCompleted(code: ourCode, reason: ourReason)
        case .closed:
            return .none
        }
    }

    private mutating func tooLarge() -> Action {
        self.fail(.messageTooBig, .tooLarge("message larger than \(self.maxMessageSize) bytes"))
    }

    private mutating func fail(_ code: UInt16, _ failure: WebSocketFailure) -> Action {
        self.closed()
        return .fail(code: code, failure: failure)
    }
}

extension UInt16 {
    fileprivate static let protocolError = CloseCode.protocolError
    fileprivate static let invalidPayload = CloseCode.invalidPayload
    fileprivate static let messageTooBig = CloseCode.messageTooBig
}
