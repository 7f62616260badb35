/// An incremental UTF-8 validator for text messages that arrive in fragments.
///
/// Written by hand because neither NIOWebSocket nor the standard library offers a *streaming* validator: RFC 6455
/// wants an endpoint to fail a text message as soon as its bytes cannot be UTF-8, even when the message is split
/// across frames at an arbitrary byte (Autobahn 6.x checks exactly that). The state machine is Björn Höhrmann's
/// DFA ("Flexible and Economical UTF-8 Decoder"), with an 8-bytes-at-a-time ASCII fast path in front, because
/// agent traffic is mostly ASCII JSON.
public struct UTF8Validator: Sendable {
    public enum Result: Sendable, Equatable {
        /// Every byte so far is valid UTF-8 and no code point is left open.
        case complete
        /// Valid so far, but the last code point is not finished yet (more fragments may complete it).
        case incomplete
        /// The bytes cannot be UTF-8, whatever follows.
        case invalid
    }

    private static let accept: UInt8 = 0
    private static let reject: UInt8 = 12

    private var state: UInt8 = UTF8Validator.accept

    public init() {}

    /// Validates one complete buffer in one go.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.feed(bytes) == .complete
    }

    /// Feeds the next bytes of the message and says where validation stands.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Result {
        guard let base = bytes.baseAddress else { return self.currentResult }
        let count = bytes.count
        var index = 0
        var state = self.state
        while index < count {
            if state == UTF8Validator.accept {
                // ASCII fast path: skip whole words whose bytes all have the top bit clear.
                while index + 8 <= count {
                    let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 != 0 { break }
                    index += 8
                }
                if index >= count { break }
            }
            let byte = base.load(fromByteOffset: index, as: UInt8.self)
            let type = UTF8Validator.characterClass[Int(byte)]
            state = UTF8Validator.transitions[Int(state) + Int(type)]
            if state == UTF8Validator.reject {
                self.state = state
                return .invalid
            }
            index += 1
        }
        self.state = state
        return self.currentResult
    }

    private var currentResult: Result {
        switch self.state {
        case UTF8Validator.accept: return .complete
        case UTF8Validator.reject: return .invalid
        default: return .incomplete
        }
    }

    // Höhrmann's tables: byte -> character class, then (state + class) -> next state.
    private static let characterClass: [UInt8] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
        7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        8, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3, 11, 6, 6, 6, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
    ]

    private static let transitions: [UInt8] = [
        0, 12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
        12, 0, 12, 12, 12, 12, 12, 0, 12, 0, 12, 12, 12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12,
        12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12,
        12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12, 12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,
        12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    ]
}
