import AgentHostCore
import AgentHostRunLog
import CAgentHostPlugin
import Logging
import NIOCore
import Prometheus
import Synchronization

/// The `agenthost_host_api_v1` table given to every plugin: C functions that find the connection behind a handle
/// and forward to `WebSocketConnection`.
///
/// C function pointers cannot capture context, so the table reaches the process-wide `ConnectionRegistry` through
/// a static. Every entry is safe from any thread, copies what it is given, and never calls the plugin back
/// synchronously (the connection defers its effects to the event loop).
public enum HostFunctionTable {
    /// The registry every plugin connection is registered in; the server must use this one.
    public static let registry = ConnectionRegistry()

    /// Makes the run log functions use `service` (the server's, with its store). Call before loading plugins;
    /// without it they use an in-memory service.
    public static func install(runLog service: RunLogService) {
        RunLogHostFunctions.install(service)
    }

    private static let installedMetrics = Mutex<PluginMetrics?>(nil)

    /// Makes the metric functions record into `metrics` (the server's, exported at /metrics). Call before loading
    /// plugins; without it they record into a registry nobody exports (tests, tools).
    public static func install(metrics: PluginMetrics) {
        installedMetrics.withLock { $0 = metrics }
    }

    static var metrics: PluginMetrics {
        installedMetrics.withLock { installed in
            if let installed { return installed }
            let fallback = PluginMetrics(registry: PrometheusCollectorRegistry(), logger: Logger(label: "agenthost.metrics"))
            installed = fallback
            return fallback
        }
    }

    /// The table, at a stable address for the life of the process (plugins keep the pointer).
    // nonisolated(unsafe): written once by the lazy initializer (swift_once), read-only afterwards.
    nonisolated(unsafe) static let table: UnsafePointer<agenthost_host_api_v1> = {
        let table = UnsafeMutablePointer<agenthost_host_api_v1>.allocate(capacity: 1)
        table.initialize(to: agenthost_host_api_v1(
            struct_size: UInt32(MemoryLayout<agenthost_host_api_v1>.size),
            abi_major: UInt32(AGENTHOST_ABI_MAJOR),
            abi_minor: UInt32(AGENTHOST_ABI_MINOR),
            send: hostSend,
            close: hostClose,
            log: hostLog,
            post: hostPost,
            timer_start: hostTimerStart,
            timer_cancel: hostTimerCancel,
            retain_conn: hostRetain,
            release_conn: hostRelease,
            log_create: hostLogCreate,
            log_open: hostLogOpen,
            log_append: hostLogAppend,
            log_end: hostLogEnd,
            log_info: hostLogInfo,
            log_watch: hostLogWatch,
            log_unwatch: hostLogUnwatch,
            log_signal: hostLogSignal,
            log_release: hostLogRelease,
            host_info: hostInfo,
            has_function: hostHasFunction,
            log_level: hostLogLevel,
            instance_post: hostInstancePost,
            instance_timer_start: hostInstanceTimerStart,
            instance_timer_cancel: hostInstanceTimerCancel,
            pause_reading: hostPauseReading,
            resume_reading: hostResumeReading,
            metric_define: hostMetricDefine,
            metric_add: hostMetricAdd,
            metric_set: hostMetricSet,
            metric_observe: hostMetricObserve))
        return UnsafePointer(table)
    }()

    /// The field names of the table, for `has_function`: every one is filled in.
    static let functionNames: Set<String> = [
        "send", "close", "log", "post", "timer_start", "timer_cancel", "retain_conn", "release_conn",
        "log_create", "log_open", "log_append", "log_end", "log_info", "log_watch", "log_unwatch", "log_signal",
        "log_release", "host_info", "has_function", "log_level", "instance_post", "instance_timer_start",
        "instance_timer_cancel", "pause_reading", "resume_reading", "metric_define", "metric_add", "metric_set",
        "metric_observe",
    ]

    static func status(_ status: ConnectionCallStatus) -> agenthost_status_t {
        switch status {
        case .ok: return agenthost_status_t(AGENTHOST_OK)
        case .backpressure: return agenthost_status_t(AGENTHOST_BACKPRESSURE)
        case .closed: return agenthost_status_t(AGENTHOST_CLOSED)
        case .badArgument: return agenthost_status_t(AGENTHOST_BAD_ARGUMENT)
        }
    }

    static let ok = agenthost_status_t(AGENTHOST_OK)
    static let closed = agenthost_status_t(AGENTHOST_CLOSED)
    static let badArgument = agenthost_status_t(AGENTHOST_BAD_ARGUMENT)
}

/// Logs (rate-limited, attributed to the connection's plugin) a call refused with BAD_ARGUMENT, and returns it.
private func refused(_ function: String, _ conn: agenthost_conn_t, _ reason: @autoclosure () -> String)
    -> agenthost_status_t
{
    if let instance = RunLogHostFunctions.connections.lookup(conn)?.instance,
        let endpoint = RunLogHostFunctions.instances.withLock({ $0[instance] })
    {
        endpoint.context.callRefused(function, conn: conn, reason: reason())
    }
    return HostFunctionTable.badArgument
}

private func hostSend(_ conn: agenthost_conn_t, _ kind: agenthost_message_kind_t, _ data: UnsafePointer<UInt8>?,
                      _ len: Int) -> agenthost_status_t {
    // size_t arrives as Int: a "length" past Int.max is negative here, and must never reach a buffer pointer.
    guard len >= 0 else { return refused("send", conn, "a length past Int.max") }
    guard data != nil || len == 0 else { return refused("send", conn, "NULL data with length \(len)") }
    let messageKind: WebSocketMessageKind
    switch kind {
    case agenthost_message_kind_t(AGENTHOST_MESSAGE_TEXT): messageKind = .text
    case agenthost_message_kind_t(AGENTHOST_MESSAGE_BINARY): messageKind = .binary
    default: return refused("send", conn, "unknown message kind \(kind)")
    }
    guard let connection = HostFunctionTable.registry.lookup(conn) else { return HostFunctionTable.closed }
    let bytes = UnsafeRawBufferPointer(start: data, count: len)
    let status = connection.send(kind: messageKind, bytes: bytes)
    guard status != .badArgument else {
        // The connection checked; the reason is worked out again only on this (rare) path.
        return refused("send", conn, messageKind == .text && !UTF8Validator.isValid(bytes)
                       ? "a text message that is not valid UTF-8 (\(len) bytes); send it as binary or fix its encoding"
                       : "a \(len)-byte message, larger than the connection's outbound limit")
    }
    return HostFunctionTable.status(status)
}

private func hostClose(_ conn: agenthost_conn_t, _ code: UInt16, _ reason: UnsafePointer<UInt8>?,
                       _ reasonLength: Int) -> agenthost_status_t {
    guard reason != nil || reasonLength == 0 else { return refused("close", conn, "NULL reason with a length") }
    guard (0...123).contains(reasonLength) else { return refused("close", conn, "a \(reasonLength)-byte reason (at most 123)") }
    let bytes = UnsafeRawBufferPointer(start: reason, count: reasonLength)
    guard UTF8Validator.isValid(bytes) else { return refused("close", conn, "a reason that is not valid UTF-8") }
    guard CloseCode.isSendable(code) else {
        return refused("close", conn, "close code \(code), which may not be sent on the wire")
    }
    guard let connection = HostFunctionTable.registry.lookup(conn) else { return HostFunctionTable.closed }
    return HostFunctionTable.status(connection.close(code: code, reason: String(decoding: bytes, as: UTF8.self)))
}

private func hostLog(_ ctx: OpaquePointer?, _ conn: agenthost_conn_t, _ level: agenthost_log_level_t,
                     _ message: UnsafePointer<UInt8>?, _ len: Int) {
    guard let ctx, len >= 0, message != nil || len == 0 else { return }
    let instance = PluginInstanceContext.from(ctx)
    let text = String(decoding: UnsafeRawBufferPointer(start: message, count: len), as: UTF8.self)
    let logLevel: Logger.Level
    switch level {
    case agenthost_log_level_t(AGENTHOST_LOG_TRACE): logLevel = .trace
    case agenthost_log_level_t(AGENTHOST_LOG_DEBUG): logLevel = .debug
    case agenthost_log_level_t(AGENTHOST_LOG_INFO): logLevel = .info
    case agenthost_log_level_t(AGENTHOST_LOG_WARNING): logLevel = .warning
    default: logLevel = .error
    }
    var metadata: Logger.Metadata = [:]
    if conn != 0 { metadata["conn"] = "\(conn)" }
    instance.logger.log(level: logLevel, "\(LogLineText.escaped(text))", metadata: metadata)
}

private func hostPost(_ conn: agenthost_conn_t, _ id: UInt64, _ data: UnsafeMutableRawPointer?) -> agenthost_status_t {
    guard let connection = HostFunctionTable.registry.lookup(conn) else { return HostFunctionTable.closed }
    return HostFunctionTable.status(connection.post(id: id, context: UInt(bitPattern: data)))
}

private func hostTimerStart(_ conn: agenthost_conn_t, _ delayMilliseconds: UInt64, _ data: UnsafeMutableRawPointer?,
                            _ timerID: UnsafeMutablePointer<UInt64>?) -> agenthost_status_t {
    guard let timerID, delayMilliseconds <= UInt64(Int64.max / 1_000_000) else { return HostFunctionTable.badArgument }
    guard let connection = HostFunctionTable.registry.lookup(conn),
        let id = connection.startTimer(after: .milliseconds(Int64(delayMilliseconds)), context: UInt(bitPattern: data))
    else { return HostFunctionTable.closed }
    timerID.pointee = id
    return HostFunctionTable.ok
}

private func hostTimerCancel(_ conn: agenthost_conn_t, _ timerID: UInt64) -> agenthost_status_t {
    guard let connection = HostFunctionTable.registry.lookup(conn) else { return HostFunctionTable.closed }
    return HostFunctionTable.status(connection.cancelTimer(timerID))
}

private func hostRetain(_ conn: agenthost_conn_t) -> agenthost_status_t {
    HostFunctionTable.registry.retain(conn) ? HostFunctionTable.ok : HostFunctionTable.closed
}

private func hostRelease(_ conn: agenthost_conn_t) -> agenthost_status_t {
    HostFunctionTable.registry.release(conn) ? HostFunctionTable.ok : HostFunctionTable.badArgument
}
