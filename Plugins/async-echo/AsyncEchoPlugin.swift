import AgentHostPluginSDK
import CAgentHostPlugin

/// async-echo: the async/await SDK in a few dozen lines. Echoes every message (and counts them in a metric); `repeat N TEXT` writes TEXT back N times,
/// each write awaiting the host's backpressure, so a client that reads slowly slows the loop down instead of
/// filling the server's memory (or being cut off at the outbound hard limit).
public final class AsyncEcho: AsyncPlugin {
    public static let name = "async-echo"
    public static let version = "1.0.0"
    public static let routes = ["/async-echo"]
    public static let decidesUpgrades = true

    let host: PluginHost
    /// Messages echoed, at the host's /metrics as agenthost_plugin_async_echo_messages_total{plugin="async-echo"}
    /// (nil on a host older than ABI 1.2).
    let messages: PluginMetric?

    public init(host: PluginHost, config: [UInt8]) throws {
        self.host = host
        self.messages = host.defineMetric(.counter, name: "async_echo_messages_total", help: "Messages echoed")
    }

    /// A new version takes over: the connections open now finish on this one (the host closes them with 1012 at
    /// the drain deadline).
    public func drain() {
        self.host.log(.info, "draining: a new async-echo serves new connections")
    }

    /// Speaks the "echo" subprotocol: selected when the client offers it, whatever else it offers first.
    public func admit(_ request: UpgradeRequestInfo) -> UpgradeAnswer {
        .accept(subprotocol: request.subprotocols.contains("echo") ? "echo" : nil)
    }

    public func handle(_ connection: AsyncConnection) async {
        do {
            for await message in connection.messages {
                self.messages?.add()
                if case .text(let text) = message, text.hasPrefix("repeat ") {
                    let parts = text.split(separator: " ", maxSplits: 2)
                    let count = parts.count == 3 ? Int(parts[1]) ?? 0 : 0
                    for _ in 0..<min(count, 1_000_000) { try await connection.write(text: String(parts[2])) }
                } else {
                    try await connection.write(message)
                }
            }
        } catch {
            connection.connection.log(.debug, "async-echo stopped: \(error)")
        }
    }
}

@c public func agenthost_plugin_entry_v1(_ hostMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
    AsyncPluginExport.descriptor(for: AsyncEcho.self)
}
