import AgentHostPluginSDK
import FoundationEssentials

/// Builders for AutoGen agentchat 0.7.5 events, for agents written natively in Swift. Each returns the same JSON
/// AutoGen's `.dump()` writes (same fields, same order), so clients cannot tell a native agent from a Python one.
public enum AutoGenEvent {
    /// Token usage as AutoGen reports it on the message that ends a model call.
    public struct Usage: Sendable {
        public var promptTokens: Int
        public var completionTokens: Int
        public init(promptTokens: Int, completionTokens: Int) {
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
        }
    }

    /// A tool call requested by a model (`FunctionCall`): `arguments` is the JSON text of the arguments.
    public struct FunctionCall: Sendable {
        public var id: String
        public var name: String
        public var arguments: String
        public init(id: String, name: String, arguments: String) {
            self.id = id
            self.name = name
            self.arguments = arguments
        }
        var json: String {
            "{\"id\":\(JSONText.quoted(self.id)),\"arguments\":\(JSONText.quoted(self.arguments)),\"name\":\(JSONText.quoted(self.name))}"
        }
    }

    /// What a tool returned (`FunctionExecutionResult`).
    public struct FunctionResult: Sendable {
        public var callID: String
        public var name: String
        public var content: String
        public var isError: Bool
        public init(callID: String, name: String, content: String, isError: Bool = false) {
            self.callID = callID
            self.name = name
            self.content = content
            self.isError = isError
        }
        var json: String {
            "{\"content\":\(JSONText.quoted(self.content)),\"name\":\(JSONText.quoted(self.name)),\"call_id\":\(JSONText.quoted(self.callID)),\"is_error\":\(self.isError)}"
        }
    }

    /// A new id, in the form AutoGen uses (a lowercase UUID).
    public static func newID() -> String { UUID().uuidString.lowercased() }

    public static func textMessage(source: String, content: String, id: String = newID(), usage: Usage? = nil)
        -> AgentEvent
    {
        self.event(.message, id: id, source: source, usage: usage,
                   fields: "\"content\":\(JSONText.quoted(content))", type: "TextMessage")
    }

    public static func chunk(source: String, content: String, fullMessageID: String) -> AgentEvent {
        self.event(.chunk, id: newID(), source: source, usage: nil,
                   fields: "\"content\":\(JSONText.quoted(content)),\"full_message_id\":\(JSONText.quoted(fullMessageID))",
                   type: "ModelClientStreamingChunkEvent")
    }

    public static func thought(source: String, content: String) -> AgentEvent {
        self.event(.message, id: newID(), source: source, usage: nil,
                   fields: "\"content\":\(JSONText.quoted(content))", type: "ThoughtEvent")
    }

    public static func toolCallRequest(source: String, calls: [FunctionCall], usage: Usage? = nil) -> AgentEvent {
        self.event(.message, id: newID(), source: source, usage: usage,
                   fields: "\"content\":[\(calls.map(\.json).joined(separator: ","))]", type: "ToolCallRequestEvent")
    }

    public static func toolCallExecution(source: String, results: [FunctionResult]) -> AgentEvent {
        self.event(.message, id: newID(), source: source, usage: nil,
                   fields: "\"content\":[\(results.map(\.json).joined(separator: ","))]", type: "ToolCallExecutionEvent")
    }

    public static func toolCallSummary(source: String, content: String, calls: [FunctionCall],
                                       results: [FunctionResult]) -> AgentEvent
    {
        self.event(.message, id: newID(), source: source, usage: nil,
                   fields: "\"content\":\(JSONText.quoted(content))",
                   type: "ToolCallSummaryMessage",
                   trailing: ",\"tool_calls\":[\(calls.map(\.json).joined(separator: ","))],\"results\":[\(results.map(\.json).joined(separator: ","))]")
    }

    public static func userInputRequested(source: String, requestID: String) -> AgentEvent {
        self.event(.message, id: newID(), source: source, usage: nil,
                   fields: "\"request_id\":\(JSONText.quoted(requestID)),\"content\":\"\"", type: "UserInputRequestedEvent")
    }

    /// The common fields of every AutoGen message, in AutoGen's order.
    static func event(_ kind: AgentEvent.Kind, id: String, source: String, usage: Usage?, fields: String, type: String,
                      trailing: String = "") -> AgentEvent
    {
        let usageJSON = usage.map { "{\"prompt_tokens\":\($0.promptTokens),\"completion_tokens\":\($0.completionTokens)}" }
            ?? "null"
        let json = "{\"id\":\(JSONText.quoted(id)),\"source\":\(JSONText.quoted(source)),\"models_usage\":\(usageJSON),"
            + "\"metadata\":{},\"created_at\":\"\(Timestamp.now(zulu: true))\",\(fields),\"type\":\"\(type)\"\(trailing)}"
        return AgentEvent(kind: kind, json: json)
    }
}
