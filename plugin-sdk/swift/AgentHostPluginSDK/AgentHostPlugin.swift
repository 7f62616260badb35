import CAgentHostPlugin

/// A plugin written in Swift: one instance per loaded plugin, one `ConnectionHandler` per connection.
///
/// Export it from your shared object with the versioned entry symbol:
/// ```swift
/// @c public func agenthost_plugin_entry_v1(_ hostMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
///     PluginExport.descriptor(for: MyPlugin.self)
/// }
/// ```
public protocol AgentHostPlugin: AnyObject {
    associatedtype Handler: ConnectionHandler

    /// [a-z0-9_-]+, unique among the host's plugins.
    static var name: String { get }
    static var version: String { get }
    /// The paths this plugin serves, each starting with "/".
    static var routes: [String] { get }

    /// Creates the instance from the plugin's config (JSON bytes from the host's config file; "{}" when none).
    /// Throw to refuse loading; the error's description is the reason the host logs.
    init(host: PluginHost, config: [UInt8]) throws

    /// A client connected. Return the handler for its events, or throw to refuse it (the host closes with 1011).
    func open(_ connection: Connection, info: OpenInfo) throws -> Handler

    /// (1.2) A new version of this plugin (or a new config) serves new connections from now on: this instance
    /// drains. Called once, on a host thread, before the instance goes; also at host shutdown. Tell clients to
    /// reconnect, stop taking new work, flush. The default does nothing.
    func drain()

    /// (1.2) Decides on an upgrade before the host answers it, after its own checks and authentication passed:
    /// accept (choosing the subprotocol) or refuse with an HTTP status and body. On the connection's event loop:
    /// do not block. Called only when `decidesUpgrades` is true (the default accepts).
    func admit(_ request: UpgradeRequestInfo) -> UpgradeAnswer

    /// Whether the host should ask `admit` before every upgrade (it copies the request's headers for it). False by
    /// default: set it to true when you implement `admit`.
    static var decidesUpgrades: Bool { get }
}

extension AgentHostPlugin {
    public func drain() {}
    public func admit(_ request: UpgradeRequestInfo) -> UpgradeAnswer { .accept(subprotocol: nil) }
    public static var decidesUpgrades: Bool { false }
}

/// Receives one connection's events. All calls arrive on the connection's event loop, one at a time.
public protocol ConnectionHandler: AnyObject {
    func didReceive(_ message: Message)
    /// The outbound queue drained after a send returned `.backpressure`.
    func didBecomeWritable()
    /// Something went wrong; `didClose` follows.
    func didFail(kind: ErrorKind, message: String)
    /// The connection is closed. The last call; `Connection` calls now return `.closed`.
    func didClose(code: UInt16, reason: String)
}

extension ConnectionHandler {
    public func didBecomeWritable() {}
    public func didFail(kind: ErrorKind, message: String) {}
    public func didClose(code: UInt16, reason: String) {}
}

/// A complete inbound message, copied out of the host's buffer.
public enum Message: Sendable, Equatable {
    case text(String)
    case binary([UInt8])
}

public enum ErrorKind: Sendable, Equatable {
    case protocolViolation, invalidData, tooLarge, timeout, transport, policy, other(Int32)

    init(_ raw: agenthost_error_kind_t) {
        switch raw {
        case agenthost_error_kind_t(AGENTHOST_ERROR_PROTOCOL): self = .protocolViolation
        case agenthost_error_kind_t(AGENTHOST_ERROR_INVALID_DATA): self = .invalidData
        case agenthost_error_kind_t(AGENTHOST_ERROR_TOO_LARGE): self = .tooLarge
        case agenthost_error_kind_t(AGENTHOST_ERROR_TIMEOUT): self = .timeout
        case agenthost_error_kind_t(AGENTHOST_ERROR_IO): self = .transport
        case agenthost_error_kind_t(AGENTHOST_ERROR_POLICY): self = .policy
        default: self = .other(raw)
        }
    }
}

/// What the host says about a new connection (copied out of the borrowed C struct).
public struct OpenInfo: Sendable {
    public var route: String
    public var requestTarget: String
    public var remoteAddress: String
    public var subprotocol: String
    public var subject: String
    public var issuer: String
    public var scopes: [String]
    public var claimsJSON: String

    init(_ raw: UnsafePointer<agenthost_open_info_v1>) {
        let info = raw.pointee
        self.route = info.route.copiedText
        self.requestTarget = info.request_target.copiedText
        self.remoteAddress = info.remote_address.copiedText
        self.subprotocol = info.subprotocol.copiedText
        self.subject = info.identity_subject.copiedText
        self.issuer = info.identity_issuer.copiedText
        self.scopes = info.identity_scopes.copiedText.split(separator: " ").map(String.init)
        self.claimsJSON = info.identity_claims_json.copiedText
    }
}
