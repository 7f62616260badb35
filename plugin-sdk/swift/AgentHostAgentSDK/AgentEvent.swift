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
