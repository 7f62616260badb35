import CAgentHostPlugin

/// A plugin written with async/await: one task per connection runs `handle(_:)`.
///
/// ```swift
/// public final class Echo: AsyncPlugin {
///     public static let name = "async-echo"
///     public static let version = "1.0.0"
///     public static let routes = ["/async-echo"]
///     public init(host: PluginHost, config: [UInt8]) throws {}
///     public func handle(_ connection: AsyncConnection) async {
///         for await message in connection.messages { try? await connection.write(message) }
///     }
/// }
/// @c public func agenthost_plugin_entry_v1(_ minor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
///     AsyncPluginExport.descriptor(for: Echo.self)
/// }
/// ```
public protocol AsyncPlugin: AnyObject, Sendable {
    static var name: String { get }
    static var version: String { get }
    static var routes: [String] { get }
    init(host: PluginHost, config: [UInt8]) throws
    /// Serves one connection. When it returns, the SDK closes the connection (1000) if it is still open.
    func handle(_ connection: AsyncConnection) async

    /// (1.2) This instance drains: a new version serves new connections (see `AgentHostPlugin.drain()`).
    func drain()

    /// (1.2) Decides on an upgrade before the 101 (see `AgentHostPlugin.admit(_:)`). Must not block or await.
    func admit(_ request: UpgradeRequestInfo) -> UpgradeAnswer

    /// Whether `admit` is asked (see `AgentHostPlugin.decidesUpgrades`). False by default.
    static var decidesUpgrades: Bool { get }
}

extension AsyncPlugin {
    public func drain() {}
    public func admit(_ request: UpgradeRequestInfo) -> UpgradeAnswer { .accept(subprotocol: nil) }
    public static var decidesUpgrades: Bool { false }
}

public enum AsyncPluginExport {
    public static func descriptor<Plugin: AsyncPlugin>(for type: Plugin.Type) -> UnsafePointer<agenthost_plugin_v1> {
        PluginExport.descriptor(for: AsyncPluginAdapter<Plugin>.self)
    }
}

/// Runs an `AsyncPlugin` on the callback SDK: callbacks feed the connection's stream and writers.
public final class AsyncPluginAdapter<Plugin: AsyncPlugin>: AgentHostPlugin {
    public static var name: String { Plugin.name }
    public static var version: String { Plugin.version }
    public static var routes: [String] { Plugin.routes }
    let plugin: Plugin

    public init(host: PluginHost, config: [UInt8]) throws {
        self.plugin = try Plugin(host: host, config: config)
    }

    public func open(_ connection: Connection, info: OpenInfo) throws -> AsyncConnectionHandler {
        let async = AsyncConnection(connection: connection, info: info)
        let plugin = self.plugin
        Task {
            await plugin.handle(async)
            if async.closeStatus == nil { await async.close() }
        }
        return AsyncConnectionHandler(async)
    }

    public func drain() { self.plugin.drain() }
    public func admit(_ request: UpgradeRequestInfo) -> UpgradeAnswer { self.plugin.admit(request) }
    public static var decidesUpgrades: Bool { Plugin.decidesUpgrades }
}

public final class AsyncConnectionHandler: ConnectionHandler {
    let connection: AsyncConnection
    init(_ connection: AsyncConnection) { self.connection = connection }
    public func didReceive(_ message: Message) { self.connection.received(message) }
    public func didBecomeWritable() { self.connection.becameWritable() }
    public func didClose(code: UInt16, reason: String) { self.connection.closed(code: code, reason: reason) }
}
