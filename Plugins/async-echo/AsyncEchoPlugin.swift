import AgentHostPluginSDK
import CAgentHostPlugin

/// async-echo: the async/await SDK in a dozen lines. Echoes every message; `repeat N TEXT` writes TEXT back N times,
/// each write awaiting the host's backpressure, so a client that reads slowly slows the loop down instead of
/// filling the server's memory (or being cut off at the outbound hard limit).
public final class AsyncEcho: AsyncPlugin {
    public static let name = "async-echo"
    public static let version = "1.0.0"
    public static let routes = ["/async-echo"]

    public init(host: PluginHost, config: [UInt8]) throws {}

    public func handle(_ connection: AsyncConnection) async {
        do {
            for await message in connection.messages {
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
