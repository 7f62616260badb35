@preconcurrency import CNIOBoringSSL

/// A TLS failure on one connection, with BoringSSL's reasons (its thread-local error queue, drained).
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public enum Stage: String, Sendable {
        case handshake, read, write, setUp = "set-up"
    }

    public let stage: Stage
    public let reason: String

    public var description: String { "TLS \(self.stage.rawValue) failed: \(self.reason)" }

    /// Empties the calling thread's BoringSSL error queue into one line. Every call a connection makes is preceded by
    /// `ERR_clear_error()` (and building a context clears it first), so what is left belongs to the call that failed.
    static func drainQueue() -> String {
        var reasons: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while case let code = ERR_get_error(), code != 0 {
            let text = buffer.withUnsafeMutableBufferPointer { pointer -> String in
                ERR_error_string_n(code, pointer.baseAddress, pointer.count)
                return String(cString: pointer.baseAddress!)
            }
            reasons.append(text)
        }
        return reasons.isEmpty ? "no reason given" : reasons.joined(separator: "; ")
    }
}
