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

/// What `PluginHost.info` tells about the host (ABI 1.2).
public struct HostInfo: Sendable, Equatable {
    public var version: String
    public var abiMajor: UInt32
    public var abiMinor: UInt32
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

    /// Whether the host's table has the function at `field` (added after 1.0): its struct reaches past the field
    /// and the pointer is set. What AGENTHOST_HOST_HAS does in C.
    func has<Function>(_ field: KeyPath<agenthost_host_api_v1, Function?>) -> Bool {
        guard let offset = MemoryLayout<agenthost_host_api_v1>.offset(of: field) else { return false }
        return Int(self.api.pointee.struct_size) >= offset + MemoryLayout<UnsafeRawPointer>.size
            && self.api.pointee[keyPath: field] != nil
    }

    /// (1.2) The host's version and ABI; nil from a host older than 1.2.
    public var info: HostInfo? {
        guard self.has(\.host_info) else { return nil }
        var info = agenthost_host_info_v1()
        info.struct_size = UInt32(MemoryLayout<agenthost_host_info_v1>.size)
        guard self.api.pointee.host_info(&info) == agenthost_status_t(AGENTHOST_OK) else { return nil }
        let version = withUnsafeBytes(of: info.host_version) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return HostInfo(version: version, abiMajor: info.abi_major, abiMinor: info.abi_minor)
    }

    /// (1.2) Whether the host has the C function named `name` (a field of agenthost_host_api_v1, e.g.
    /// "pause_reading"). False on a host older than 1.2 for everything it cannot name.
    public func hasFunction(_ name: String) -> Bool {
        guard self.has(\.has_function) else { return false }
        return name.withCString { self.api.pointee.has_function($0) } == 1
    }

    /// (1.2) The lowest level the host writes for this instance now: skip building messages below it. `.trace`
    /// (everything) on a host older than 1.2.
    public var logLevel: LogLevel {
        guard self.has(\.log_level) else { return .trace }
        switch self.api.pointee.log_level(self.context) {
        case agenthost_log_level_t(AGENTHOST_LOG_TRACE): return .trace
        case agenthost_log_level_t(AGENTHOST_LOG_DEBUG): return .debug
        case agenthost_log_level_t(AGENTHOST_LOG_INFO): return .info
        case agenthost_log_level_t(AGENTHOST_LOG_WARNING): return .warning
        default: return .error
        }
    }

    /// (1.2) Runs `body` after `milliseconds` on a host event loop, for the instance (not tied to a connection).
    /// Returns the timer id for `cancelTimer`, or nil if the instance is going or the host is older than 1.2.
    /// Instance events run one at a time per instance.
    @discardableResult
    public func schedule(afterMilliseconds milliseconds: UInt64, _ body: @escaping @Sendable () -> Void) -> UInt64? {
        guard self.has(\.instance_timer_start) else { return nil }
        let box = Unmanaged.passRetained(DeferredWork(body))
        var id: UInt64 = 0
        guard self.api.pointee.instance_timer_start(self.context, milliseconds, box.toOpaque(), &id)
            == agenthost_status_t(AGENTHOST_OK)
        else {
            box.release()
            return nil
        }
        return id
    }

    /// (1.2) Cancels an instance timer; its closure is released without running.
    @discardableResult
    public func cancelTimer(_ id: UInt64) -> HostStatus {
        guard self.has(\.instance_timer_cancel) else { return .unavailable }
        return HostStatus(self.api.pointee.instance_timer_cancel(self.context, id))
    }

    /// (1.2) Runs `body` on a host event loop for the instance, after the current callback. Callable from any
    /// thread. False if the instance is going or the host is older than 1.2.
    @discardableResult
    public func post(_ body: @escaping @Sendable () -> Void) -> Bool {
        guard self.has(\.instance_post) else { return false }
        let box = Unmanaged.passRetained(DeferredWork(body))
        guard self.api.pointee.instance_post(self.context, 0, box.toOpaque()) == agenthost_status_t(AGENTHOST_OK) else {
            box.release()
            return false
        }
        return true
    }

    public func log(_ level: LogLevel, _ message: String) {
        self.log(level, message, connection: 0)
    }

    func log(_ level: LogLevel, _ message: String, connection: agenthost_conn_t) {
        var message = message
        message.withUTF8 { self.api.pointee.log(self.context, connection, level.raw, $0.baseAddress, $0.count) }
    }
}
