import AgentHostPluginSDK
import CAgentHostPlugin

/// async-shout: a Swift plugin with async/await, serving /async-shout. Each connection is a task that answers every
/// text message in capitals; each write waits for the host's backpressure (a slow client slows it down).
public final class AsyncShoutPlugin: AsyncPlugin {
    public static let name = "async-shout"
    public static let version = "1.0.0"
    public static let routes = ["/async-shout"]

    public init(host: PluginHost, config: [UInt8]) throws {}

    public func handle(_ connection: AsyncConnection) async {
        do {
            for await message in connection.messages {
                guard case .text(let text) = message else { continue }
                try await connection.write(text: "\(text.uppercased()) (async-shout \(Self.version))")
            }
        } catch {
            connection.connection.log(.debug, "async-shout stopped: \(error)")
        }
    }
}

@c public func agenthost_plugin_entry_v1(_ hostABIMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
    AsyncPluginExport.descriptor(for: AsyncShoutPlugin.self)
}
