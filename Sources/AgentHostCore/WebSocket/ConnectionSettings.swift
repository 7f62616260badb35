import Logging
import NIOCore

/// What all of one server's connections share, by reference: its `WebSocketConfiguration`, connection tables and
/// logger. An idle connection then carries one pointer instead of its own copy of each (the limits alone are about
/// 130 bytes, twice per connection; the logger 56).
final class ConnectionSettings: Sendable {
    let configuration: WebSocketConfiguration
    let registry: ConnectionRegistry
    let openConnections: OpenConnections
    let logger: Logger
    /// `configuration.slowCallbackThreshold`, as the clock reads it.
    let slowCallbackNanoseconds: UInt64

    init(_ configuration: WebSocketConfiguration, registry: ConnectionRegistry, openConnections: OpenConnections,
         logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.openConnections = openConnections
        self.logger = logger
        self.slowCallbackNanoseconds = UInt64(max(0, configuration.slowCallbackThreshold.nanoseconds))
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
