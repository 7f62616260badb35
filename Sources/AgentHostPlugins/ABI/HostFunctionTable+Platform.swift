import AgentHostCore
import CAgentHostPlugin
import Logging
import NIOCore

// The ABI 1.2 entries of the host function table: capabilities, instance events and inbound flow control. Internal,
// not private: `HostFunctionTable.table` (in HostFunctionTable.swift) points at them.

// MARK: Capabilities

func hostInfo(_ info: UnsafeMutablePointer<agenthost_host_info_v1>?) -> agenthost_status_t {
    guard let info else { return HostFunctionTable.badArgument }
    let size = Int(info.pointee.struct_size)
    // Only what the caller's struct has room for is written.
    guard size >= MemoryLayout<agenthost_host_info_v1>.offset(of: \agenthost_host_info_v1.host_version)! else {
        return HostFunctionTable.badArgument
    }
    info.pointee.abi_major = UInt32(AGENTHOST_ABI_MAJOR)
    info.pointee.abi_minor = UInt32(AGENTHOST_ABI_MINOR)
    if size >= MemoryLayout<agenthost_host_info_v1>.size {
        withUnsafeMutableBytes(of: &info.pointee.host_version) { field in
            field.initializeMemory(as: UInt8.self, repeating: 0)
            let version = Array(AgentHostVersion.current.utf8.prefix(field.count - 1))
            field.copyBytes(from: version)
        }
    }
    return HostFunctionTable.ok
}

func hostHasFunction(_ name: UnsafePointer<CChar>?) -> Int32 {
    guard let name else { return 0 }
    return HostFunctionTable.functionNames.contains(String(cString: name)) ? 1 : 0
}

func hostLogLevel(_ ctx: OpaquePointer?) -> agenthost_log_level_t {
    guard let ctx else { return agenthost_log_level_t(AGENTHOST_LOG_INFO) }
    switch PluginInstanceContext.from(ctx).logger.logLevel {
    case .trace: return agenthost_log_level_t(AGENTHOST_LOG_TRACE)
    case .debug: return agenthost_log_level_t(AGENTHOST_LOG_DEBUG)
    case .info: return agenthost_log_level_t(AGENTHOST_LOG_INFO)
    // A host at notice drops info lines (the plugin's INFO is logged as .info): tell the plugin WARNING.
    case .notice, .warning: return agenthost_log_level_t(AGENTHOST_LOG_WARNING)
    case .error, .critical: return agenthost_log_level_t(AGENTHOST_LOG_ERROR)
    }
}

// MARK: (1.2) Instance events

func status(_ refusal: InstanceEvents.Refusal) -> agenthost_status_t {
    switch refusal {
    case .closed: return HostFunctionTable.closed
    case .full: return agenthost_status_t(AGENTHOST_UNAVAILABLE)
    }
}

func hostInstancePost(_ ctx: OpaquePointer?, _ id: UInt64, _ data: UnsafeMutableRawPointer?) -> agenthost_status_t {
    guard let ctx else { return HostFunctionTable.badArgument }
    switch PluginInstanceContext.from(ctx).events.post(id: id, context: UInt(bitPattern: data)) {
    case .success: return HostFunctionTable.ok
    case .failure(let refusal): return status(refusal)
    }
}

func hostInstanceTimerStart(_ ctx: OpaquePointer?, _ delayMilliseconds: UInt64, _ data: UnsafeMutableRawPointer?,
                                    _ timerID: UnsafeMutablePointer<UInt64>?) -> agenthost_status_t {
    guard let ctx, let timerID, delayMilliseconds <= UInt64(Int64.max / 1_000_000) else {
        return HostFunctionTable.badArgument
    }
    switch PluginInstanceContext.from(ctx).events.startTimer(after: .milliseconds(Int64(delayMilliseconds)),
                                                              context: UInt(bitPattern: data)) {
    case .success(let id):
        timerID.pointee = id
        return HostFunctionTable.ok
    case .failure(let refusal):
        return status(refusal)
    }
}

func hostInstanceTimerCancel(_ ctx: OpaquePointer?, _ timerID: UInt64) -> agenthost_status_t {
    guard let ctx else { return HostFunctionTable.badArgument }
    return PluginInstanceContext.from(ctx).events.cancelTimer(timerID) ? HostFunctionTable.ok : HostFunctionTable.closed
}

// MARK: (1.2) Inbound flow control

func hostPauseReading(_ conn: agenthost_conn_t) -> agenthost_status_t {
    guard let connection = HostFunctionTable.registry.lookup(conn) else { return HostFunctionTable.closed }
    return HostFunctionTable.status(connection.pauseReading())
}

func hostResumeReading(_ conn: agenthost_conn_t) -> agenthost_status_t {
    guard let connection = HostFunctionTable.registry.lookup(conn) else { return HostFunctionTable.closed }
    return HostFunctionTable.status(connection.resumeReading())
}
