import AgentHostPluginSDK
import CAgentHostPlugin

/// greeter: a Swift plugin with callbacks, serving /greeter. Answers each text message with a greeting.
public final class GreeterPlugin: AgentHostPlugin {
    public static let name = "greeter"
    public static let version = "1.0.0"
    public static let routes = ["/greeter"]

    public init(host: PluginHost, config: [UInt8]) throws {}

    public func open(_ connection: Connection, info: OpenInfo) throws -> Session {
        Session(connection: connection)
    }

    public final class Session: ConnectionHandler {
        let connection: Connection
        init(connection: Connection) { self.connection = connection }

        public func didReceive(_ message: Message) {
            guard case .text(let name) = message else { return }
            self.connection.send(text: "Hello, \(name)! (greeter \(GreeterPlugin.version))")
        }
    }
}

@c public func agenthost_plugin_entry_v1(_ hostABIMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
    PluginExport.descriptor(for: GreeterPlugin.self)
}
