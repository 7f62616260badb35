import AgentHostAgentSDK
import AgentHostPluginSDK
import CAgentHostPlugin

/// native-agent: an agent route written in Swift with the agent SDK, no Python. For every task it
///   1. calls a tool (`word_count`) and reports the call and its result, as AutoGen's AssistantAgent does,
///   2. streams a reply token by token (ModelClientStreamingChunkEvent, then the full TextMessage),
///   3. asks the user one question (`input_request`) and waits for `input_response`,
///   4. streams a closing reply and completes with a TaskResult.
/// So every frame type of the protocol is exercised by a route that starts in milliseconds. `token_delay_ms` in
/// the config (default 0) spaces the tokens out like a real model would.
public struct NativeAgent: AgentRoute {
    public static let name = "native-agent"
    public static let version = "1.0.0"
    public static let routes = ["/agents/native"]
    public static let configKeys: Set<String>? = ["token_delay_ms"]

    let tokenDelayMilliseconds: Int

    public init(host: PluginHost, config: AgentRouteConfig) throws {
        self.tokenDelayMilliseconds = try config.int("token_delay_ms", default: 0, range: 0...10_000)
    }

    public func run(_ run: AgentRun) async throws -> AgentRunResult {
        try await run.emit(AutoGenEvent.textMessage(source: "user", content: run.task.text))

        // A tool call: the model asks for word_count, the agent runs it, both are reported.
        let call = AutoGenEvent.FunctionCall(id: "call_\(run.id.suffix(8))", name: "word_count",
                                             arguments: "{\"text\":\(JSONText.quoted(run.task.text))}")
        try await run.emit(AutoGenEvent.thought(source: "assistant", content: "I will count the words first."))
        try await run.emit(AutoGenEvent.toolCallRequest(source: "assistant", calls: [call],
                                                        usage: .init(promptTokens: 12, completionTokens: 6)))
        let words = run.task.text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).count
        let result = AutoGenEvent.FunctionResult(callID: call.id, name: call.name, content: String(words))
        try await run.emit(AutoGenEvent.toolCallExecution(source: "assistant", results: [result]))

        try await self.stream("Your task has \(words) words. Shall I go on?", run: run)

        let answer = try await run.requestInput(prompt: "Enter your response: ")
        try await run.emit(AutoGenEvent.textMessage(source: "user", content: answer))

        try await self.stream("Noted: \(answer). Done.", run: run)
        return .completed(stopReason: nil)
    }

    /// Streams `text` a token (word) at a time, then the whole message, as AutoGen's streaming agents do: every
    /// chunk names the final message's id in `full_message_id`.
    func stream(_ text: String, run: AgentRun) async throws {
        let messageID = AutoGenEvent.newID()
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        for (index, word) in words.enumerated() {
            if self.tokenDelayMilliseconds > 0 { try await Task.sleep(for: .milliseconds(self.tokenDelayMilliseconds)) }
            let token = index == words.count - 1 ? String(word) : word + " "
            try await run.emit(AutoGenEvent.chunk(source: "assistant", content: token, fullMessageID: messageID))
        }
        try await run.emit(AutoGenEvent.textMessage(source: "assistant", content: text, id: messageID,
                                                    usage: .init(promptTokens: 20, completionTokens: words.count)))
    }
}

@c public func agenthost_plugin_entry_v1(_ hostMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
    AgentPlugin<NativeAgent>.descriptor()
}
