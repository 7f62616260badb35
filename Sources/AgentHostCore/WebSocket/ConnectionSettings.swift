/// One server's `WebSocketConfiguration`, shared by reference by all its connections: an idle connection then
/// carries a pointer instead of its own copy of every limit (about 130 bytes twice per connection).
final class ConnectionSettings: Sendable {
    let configuration: WebSocketConfiguration

    init(_ configuration: WebSocketConfiguration) {
        self.configuration = configuration
    }
}

/// The connection info waiting for the handler to be added; dropped once the session is open, so an idle
/// connection does not keep the request target, peer and identity strings around.
final class PendingConnectionInfo {
    let info: ConnectionInfo

    init(_ info: ConnectionInfo) {
        self.info = info
    }
}
