import CAgentHostPlugin

public enum LogLevel: Sendable {
    case trace, debug, info, warning, error

    var raw: agenthost_log_level_t {
        switch self {
        case .trace: return agenthost_log_level_t(AGENTHOST_LOG_TRACE)
        case .debug: return agenthost_log_level_t(AGENTHOST_LOG_DEBUG)
        case .info: return agenthost_log_level_t(AGENTHOST_LOG_INFO)
        case .warning: return agenthost_log_level_t(AGENTHOST_LOG_WARNING)
        case .error: return agenthost_log_level_t(AGENTHOST_LOG_ERROR)
        }
    }
}

/// The host as a plugin instance sees it: its function table and the instance's context.
public struct PluginHost: @unchecked Sendable, Hashable {
    // @unchecked: both pointers are owned by the host, immutable, and valid until instance_drop.
    let api: UnsafePointer<agenthost_host_api_v1>
    let context: OpaquePointer?

    /// A host as a test kit builds it: `api` must stay valid for as long as the value is used. Plugins get theirs
    /// from the SDK (`AgentHostPlugin.init(host:config:)`).
    public init(api: UnsafePointer<agenthost_host_api_v1>, context: OpaquePointer?) {
        self.api = api
        self.context = context
    }

    /// The host's ABI minor version: functions added after 1.0 are present only if it is high enough.
    public var abiMinor: UInt32 { self.api.pointee.abi_minor }

    /// Whether the host offers the run log (ABI 1.1): its minor version says so and its table is long enough to
    /// hold every run log function. A 1.0 host has none; `RunLog` calls then fail with `.unavailable`.
    public var hasRunLog: Bool {
        let end = MemoryLayout<agenthost_host_api_v1>.offset(of: \.log_release)! + MemoryLayout<UnsafeRawPointer>.size
        return self.abiMinor >= 1 && Int(self.api.pointee.struct_size) >= end && self.api.pointee.log_release != nil
    }

    public func log(_ level: LogLevel, _ message: String) {
        self.log(level, message, connection: 0)
    }

    func log(_ level: LogLevel, _ message: String, connection: agenthost_conn_t) {
        var message = message
        message.withUTF8 { self.api.pointee.log(self.context, connection, level.raw, $0.baseAddress, $0.count) }
    }
}
