import Metrics

/// Counts every refusal, labelled by reason, through swift-metrics (`agenthost_refusals_total{reason=...}`): an
/// operator sees at `/metrics` what is being turned away, and how often. Refusals are rare next to messages, so
/// looking the counter up in the metrics factory each time is fine; nothing here is on the per-message path.
public enum Refusals {
    public enum Reason: String, Sendable, CaseIterable {
        case tooManyConnections = "too_many_connections"
        case tooManyConnectionsFromAddress = "too_many_connections_from_address"
        case unknownRoute = "unknown_route"
        case badHandshake = "bad_handshake"
        case malformedHTTP = "malformed_http"
        case handshakeTimeout = "handshake_timeout"
        case origin = "origin"
        case unauthenticated = "unauthenticated"
        case forbidden = "forbidden"
        case protocolError = "protocol_error"
        case invalidUTF8 = "invalid_utf8"
        case tooLarge = "too_large"
        case messageRate = "message_rate"
        case slowReader = "slow_reader"
        case pingTimeout = "ping_timeout"
        case idleTimeout = "idle_timeout"
        case pluginRefused = "plugin_refused"
        /// An endpoint (a plugin's on_upgrade) refused an upgrade the host's own checks passed.
        case endpoint = "endpoint"
    }

    public static func count(_ reason: Reason) {
        Counter(label: "agenthost_refusals_total", dimensions: [("reason", reason.rawValue)]).increment()
    }
}
