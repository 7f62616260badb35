import AgentHostPluginSDK

/// How frames reach one client. Runs write their frames once, in the Studio-superset encoding (`ServerFrame`),
/// to the run log; an encoding turns each log entry (and each frame outside a run: system, pong, error) into what
/// its client speaks, at the edge. Another wire format (AG-UI, say) is one more conformance chosen per socket:
/// the runs, the log and resume do not change, and a resume stays byte for byte in every encoding.
protocol WireEncoding: Sendable {
    /// Sends one run frame, a log entry (borrowed bytes).
    func send(entry: UnsafeBufferPointer<UInt8>, to connection: Connection) -> HostStatus
    /// Sends a frame that belongs to no run's stream.
    func send(frame: String, to connection: Connection) -> HostStatus
}

/// AutoGen Studio's frames with AgentHost's envelope (plugin-sdk/agent-protocol.md): what the log holds, sent as
/// is.
struct StudioWireEncoding: WireEncoding {
    func send(entry: UnsafeBufferPointer<UInt8>, to connection: Connection) -> HostStatus {
        connection.send(utf8Text: entry)
    }

    func send(frame: String, to connection: Connection) -> HostStatus {
        connection.send(text: frame)
    }
}
