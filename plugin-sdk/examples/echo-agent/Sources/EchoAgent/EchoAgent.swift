import AgentHostAgentSDK
import AgentHostPluginSDK
import CAgentHostPlugin

/// echo-agent: an agent route serving /agents/echo-agent, speaking the AutoGen Studio protocol superset. For each task
/// it streams the task back a word at a time, then the whole message, and completes the run.
public struct EchoAgentRoute: AgentRoute {
    public static let name = "echo-agent"
    public static let version = "1.0.0"
    public static let routes = ["/agents/echo-agent"]

    public init(host: PluginHost, config: AgentRouteConfig) throws {}

    public func run(_ run: AgentRun) async throws -> AgentRunResult {
        let messageID = AutoGenEvent.newID()
        for word in run.task.text.split(separator: " ") {
            try await run.emit(AutoGenEvent.chunk(source: "assistant", content: String(word) + " ",
                                                  fullMessageID: messageID))
        }
        try await run.emit(AutoGenEvent.textMessage(
            source: "assistant", content: "You said: \(run.task.text) (echo-agent \(Self.version))", id: messageID))
        return .completed(stopReason: nil)
    }
}

@c public func agenthost_plugin_entry_v1(_ hostMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
    AgentPlugin<EchoAgentRoute>.descriptor()
}
