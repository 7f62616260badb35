/// One event of a run, as AutoGen's `item.dump()` would write it: a JSON object with a `type` field.
///
/// The SDK never rewrites the JSON: it becomes the `data` of a `message`, `message_chunk` or `input_request` frame
/// byte for byte. Native agents build events with `AutoGenEvent`; bridges to AutoGen (the autogen-team plugin) pass
/// AutoGen's own output through.
public struct AgentEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Any AutoGen message or event (TextMessage, ToolCallRequestEvent, ThoughtEvent, HandoffMessage, ...):
        /// a `message` frame. Kept for the run's TaskResult.
        case message
        /// ModelClientStreamingChunkEvent: a `message_chunk` frame. Not part of the TaskResult (as in AutoGen).
        case chunk
    }

    public var kind: Kind
    /// The event's JSON object.
    public var json: String

    public init(kind: Kind, json: String) {
        self.kind = kind
        self.json = json
    }
}

/// How a run ended, as its author reports it. The SDK turns it into the run's one `result` frame.
public enum AgentRunResult: Sendable {
    /// The SDK builds AutoGen's TaskResult from the run's `.message` events, as AutoGen does.
    case completed(stopReason: String?)
    /// A TaskResult already in AutoGen's JSON form (`{"messages": [...], "stop_reason": ...}`), passed through.
    case taskResult(json: String)
}

/// A run that failed: ends it with `completion {status: "error"}` carrying `message`.
public struct AgentRunError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}
