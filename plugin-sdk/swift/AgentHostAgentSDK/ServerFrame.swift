import AgentHostPluginSDK

/// The frames the server sends, as JSON text: AutoGen Studio's frames (type, and Studio's own fields in Studio's
/// order) followed by the envelope: `v`, `run_id`, `seq`, `ts`. Payloads (`data`) are inserted verbatim.
/// Written as text because `data` must stay AutoGen's bytes; a JSON encoder would re-order or re-escape them.
enum ServerFrame {
    static let version = 1

    /// The envelope of a frame that belongs to a run's stream.
    struct Envelope {
        var runID: String
        var seq: Int
        /// Only in the first frame of an anonymous starter's run: what it must send with `resume`.
        var resumeToken: String? = nil
    }

    static func system(status: String, route: String) -> String {
        let ts = Timestamp.now()
        return "{\"type\":\"system\",\"status\":\(JSONText.quoted(status)),\"protocol\":\"agenthost-agent\","
            + "\"route\":\(JSONText.quoted(route)),\"timestamp\":\"\(ts)\",\"v\":\(version),\"ts\":\"\(ts)\"}"
    }

    static func pong() -> String {
        let ts = Timestamp.now()
        return "{\"type\":\"pong\",\"timestamp\":\"\(ts)\",\"v\":\(version),\"ts\":\"\(ts)\"}"
    }

    /// An error about a client frame. It is not part of any run's stream, so it has no `seq`.
    static func error(_ code: ProtocolErrorCode, _ message: String, runID: String? = nil, extra: String = "") -> String {
        let ts = Timestamp.now()
        let run = runID.map { ",\"run_id\":\(JSONText.quoted($0))" } ?? ""
        return "{\"type\":\"error\",\"error\":\(JSONText.quoted(message)),\"code\":\"\(code.rawValue)\"\(extra),"
            + "\"timestamp\":\"\(ts)\",\"v\":\(version)\(run),\"ts\":\"\(ts)\"}"
    }

    static func message(_ event: AgentEvent, _ envelope: Envelope) -> String {
        let type = event.kind == .chunk ? "message_chunk" : "message"
        return "{\"type\":\"\(type)\",\"data\":\(event.json)\(self.envelope(envelope))}"
    }

    static func inputRequest(prompt: String, requestID: String, event: AgentEvent, _ envelope: Envelope) -> String {
        let ts = Timestamp.now()
        return "{\"type\":\"input_request\",\"prompt\":\(JSONText.quoted(prompt)),\"data\":\(event.json),"
            + "\"request_id\":\(JSONText.quoted(requestID)),\"timestamp\":\"\(ts)\"\(self.envelope(envelope, ts: ts))}"
    }

    /// The terminal frame of a completed run: Studio's `result`.
    static func result(taskResult: String, duration: Double, _ envelope: Envelope) -> String {
        "{\"type\":\"result\",\"data\":{\"task_result\":\(taskResult),\"usage\":\"\",\"duration\":\(duration)},"
            + "\"status\":\"complete\"\(self.envelope(envelope))}"
    }

    /// The terminal frame of a run that did not complete: Studio's `completion`, with `status` cancelled, error
    /// or timeout and the reason both in the TaskResult (as Studio) and at the top (`stop_reason`).
    static func completion(status: CompletionStatus, reason: String, messages: [String], duration: Double,
                           _ envelope: Envelope) -> String
    {
        let ts = Timestamp.now()
        let taskResult = "{\"messages\":[\(messages.joined(separator: ","))],\"stop_reason\":\(JSONText.quoted(reason))}"
        let error = status == .error ? ",\"error\":\(JSONText.quoted(reason))" : ""
        return "{\"type\":\"completion\",\"status\":\"\(status.rawValue)\",\"data\":{\"task_result\":\(taskResult),"
            + "\"usage\":\"\",\"duration\":\(duration)},\"stop_reason\":\(JSONText.quoted(reason))\(error),"
            + "\"timestamp\":\"\(ts)\"\(self.envelope(envelope, ts: ts))}"
    }

    private static func envelope(_ envelope: Envelope, ts: String = Timestamp.now()) -> String {
        ",\"v\":\(version),\"run_id\":\(JSONText.quoted(envelope.runID)),\"seq\":\(envelope.seq),\"ts\":\"\(ts)\""
            + (envelope.resumeToken.map { ",\"resume_token\":\"\($0)\"" } ?? "")
    }
}

/// How a run that did not complete ended.
public enum CompletionStatus: String, Sendable {
    case cancelled, error, timeout
}

/// The `code` of an `error` frame: what was wrong with the client's frame. Documented in plugin-sdk/agent-protocol.md.
enum ProtocolErrorCode: String {
    case invalidJSON = "invalid_json"
    case invalidFrame = "invalid_frame"
    case unknownType = "unknown_type"
    case runExists = "run_exists"
    case unknownRun = "unknown_run"
    case tooManyRuns = "too_many_runs"
    case notWaitingForInput = "not_waiting_for_input"
    case resumeGap = "resume_gap"
    case taskTooLarge = "task_too_large"
    case forbidden = "forbidden"
    /// The host's run log cannot serve the request now (its store cannot be read, the host is shutting down).
    case unavailable = "unavailable"
}
