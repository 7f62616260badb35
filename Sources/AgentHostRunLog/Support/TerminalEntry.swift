import AgentHostCore
import Foundation

/// The entry the host appends when a log's writer went away without log_end: the agent protocol's terminal frame,
/// exactly as the ABI header's RUN LOG section spells it.
enum TerminalEntry {
    static func bytes(reason: String, key: [UInt8], seq: UInt64, milliseconds: Int64) -> [UInt8] {
        let r = JSONText.quoted(reason)
        let t = JSONText.quoted(RunLogTime.iso8601(milliseconds))
        let k = JSONText.quoted(String(decoding: key, as: UTF8.self))
        let json = """
            {"type":"completion","status":"error","data":{"task_result":{"messages":[],"stop_reason":\(r)},\
            "usage":"","duration":0},"stop_reason":\(r),"error":\(r),"timestamp":\(t),"v":1,"run_id":\(k),\
            "seq":\(seq),"ts":\(t)}
            """
        return Array(json.utf8)
    }

    static let restartReason = "the server restarted while the run was live"
    static let writerGoneReason = "the run's writer went away"
    /// Two workers were handed the same new run at once (a client that retried on another socket): the store keeps
    /// the copy stored first; the other is ended with this.
    static let takenReason = "the same run was started on another worker at the same moment: this copy was stopped"
}

/// Times as run logs show them: ISO 8601 with milliseconds, UTC.
public enum RunLogTime {
    public static func iso8601(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
