import AgentHostPluginSDK

/// An agent route written in Swift: the author turns a task into a stream of AutoGen-shaped events; the SDK speaks
/// the agent protocol (plugin-sdk/agent-protocol.md) on every socket of the route.
///
/// ```swift
/// struct Hello: AgentRoute {
///     static let name = "hello"
///     static let version = "1.0.0"
///     static let routes = ["/agents/hello"]
///     init(host: PluginHost, config: AgentRouteConfig) throws {}
///     func run(_ run: AgentRun) async throws -> AgentRunResult {
///         try await run.emit(AutoGenEvent.textMessage(source: "hello", content: "Hello, \(run.task.text)!"))
///         return .completed(stopReason: nil)
///     }
/// }
///
/// @c public func agenthost_plugin_entry_v1(_ hostMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
///     AgentPlugin<Hello>.descriptor()
/// }
/// ```
public protocol AgentRoute: Sendable {
    /// [a-z0-9_-]+, unique among the host's plugins.
    static var name: String { get }
    static var version: String { get }
    /// The paths served. A path ending in `/*` serves every path below it.
    static var routes: [String] { get }
    /// Pattern routes (of `routes`) whose last path segment names the run, as AutoGen Studio's
    /// `/api/ws/runs/{run_id}`: a `start` without `run_id` on such a path gets that id. Default: none.
    static var runIDRoutes: [String] { get }
    /// The route's own config keys. When set, any other key (besides the SDK's, see `AgentRouteOptions.keys`)
    /// refuses the plugin with a message naming it: a typo is reported, not silently ignored. Default: nil, no check.
    static var configKeys: Set<String>? { get }

    /// Creates the route from the plugin's config (its object under `plugin_config`). Throw to refuse loading.
    init(host: PluginHost, config: AgentRouteConfig) throws

    /// A client connected to `info.route`. Throw to refuse it (the host closes the socket with 1011), for example
    /// when a pattern route (`/agents/*`) has nothing configured at that path.
    func admit(_ info: OpenInfo) throws

    /// Runs one task. Emit events in order, ask for input when needed, and return how it ended. Throwing
    /// `AgentRunError` (or any error) ends the run with `completion {status: "error"}`.
    func run(_ run: AgentRun) async throws -> AgentRunResult

    /// The plugin instance is being dropped (replaced by a new version or removed). Release processes, threads.
    func shutdown()
}

extension AgentRoute {
    public static var runIDRoutes: [String] { [] }
    public static var configKeys: Set<String>? { nil }
    public func admit(_ info: OpenInfo) throws {}
    public func shutdown() {}
}
