import FoundationEssentials
import Foundation
import AgentHostPluginSDK

/// A frame from the client, parsed. Studio clients send `start`, `stop`, `input_response` and `ping` without a
/// `run_id`; they then address the socket's most recent run.
enum ClientFrame {
    case start(runID: String?, task: AgentTask, teamConfig: String?)
    case stop(runID: String?, reason: String?)
    case inputResponse(runID: String?, requestID: String?, response: String)
    case ping
    /// `resumeToken`: the token from the run's first frame, which anonymous clients need (protocol superset).
    case resume(runID: String, lastSeq: Int, resumeToken: String?)

    struct Invalid: Error {
        var code: ProtocolErrorCode
        var message: String
        var runID: String?
        /// More fields for the error frame, as JSON text starting with a comma (`resume_gap`'s `first_seq`).
        var extra: String = ""
    }

    static func parse(_ text: String) throws(Invalid) -> ClientFrame {
        // JSONSerialization: client frames are small and their key order does not matter.
        guard let data = text.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let frame = object as? [String: Any]
        else { throw Invalid(code: .invalidJSON, message: "Invalid message format: expected a JSON object") }
        guard let type = frame["type"] as? String else {
            throw Invalid(code: .invalidFrame, message: "Invalid message format: missing \"type\"")
        }
        let runID = try self.runID(frame["run_id"])
        switch type {
        case "start":
            guard let task = frame["task"], !(task is NSNull), let parsed = AgentTask(task) else {
                throw Invalid(code: .invalidFrame,
                              message: "Invalid start message format: \"task\" must be a string or an AutoGen message",
                              runID: runID)
            }
            var teamConfig: String?
            if let config = frame["team_config"], !(config is NSNull) {
                guard JSONSerialization.isValidJSONObject(config),
                    let bytes = try? JSONSerialization.data(withJSONObject: config)
                else { throw Invalid(code: .invalidFrame, message: "team_config must be a JSON object", runID: runID) }
                teamConfig = String(decoding: bytes, as: UTF8.self)
            }
            return .start(runID: runID, task: parsed, teamConfig: teamConfig)
        case "stop":
            return .stop(runID: runID, reason: frame["reason"] as? String)
        case "input_response":
            guard let response = frame["response"] as? String else {
                throw Invalid(code: .invalidFrame, message: "input_response needs a \"response\" string", runID: runID)
            }
            return .inputResponse(runID: runID, requestID: frame["request_id"] as? String, response: response)
        case "ping":
            return .ping
        case "resume":
            guard let runID else { throw Invalid(code: .invalidFrame, message: "resume needs a \"run_id\"") }
            // Absent: replay from the start.
            let token = frame["resume_token"] as? String
            guard let value = frame["last_seq"] else { return .resume(runID: runID, lastSeq: 0, resumeToken: token) }
            guard let number = value as? NSNumber, !isJSONBoolean(value), let lastSeq = Int(exactly: number.doubleValue),
                lastSeq >= 0
            else { throw Invalid(code: .invalidFrame, message: "last_seq must be a whole number >= 0", runID: runID) }
            return .resume(runID: runID, lastSeq: lastSeq, resumeToken: token)
        default:
            throw Invalid(code: .unknownType, message: "Unknown message type \(type.prefix(64))", runID: runID)
        }
    }

    /// Run ids chosen by clients are echoed in every frame and logs: 1 to 128 of [A-Za-z0-9._:-]. A JSON number
    /// (Studio's ids are small integers) is accepted only as an integer literal from 0 to 2^53 - 1, taken as its
    /// decimal digits: anything else ("1e+300", -5, 0.5, 1.0) is refused like a string outside the charset. Two
    /// literals must not name one run: a fraction or an exponent (1.0000000000000001 reads as 1) is refused by
    /// what the parser made of it (a floating-point number), and 2^53 and above because JSON 2^53 + 1 reads as the
    /// same double.
    static func runID(_ value: Any?) throws(Invalid) -> String? {
        guard let value, !(value is NSNull) else { return nil }
        let text: String?
        if let number = value as? NSNumber, !isJSONBoolean(value) {
            let double = number.doubleValue
            text = !isFloatingPoint(number) && double >= 0 && double < 9_007_199_254_740_992
                ? Int(exactly: double).map { String($0) } : nil
        } else {
            text = value as? String
        }
        guard let text, isValidRunID(text) else {
            throw Invalid(code: .invalidFrame,
                          message: "run_id must be 1-128 characters of A-Z a-z 0-9 . _ : - (or a whole number >= 0)")
        }
        return text
    }

    /// Whether JSONSerialization read the number as a double: its literal had a fraction or an exponent.
    private static func isFloatingPoint(_ number: NSNumber) -> Bool {
        switch UInt8(bitPattern: number.objCType.pointee) {
        case UInt8(ascii: "d"), UInt8(ascii: "f"): return true
        default: return false
        }
    }

    static func isValidRunID(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.count <= 128 && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
                UInt8(ascii: "-"):
                return true
            default: return false
            }
        }
    }
}
