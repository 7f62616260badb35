import CAgentHostPlugin
import Synchronization

/// The C function table every `PluginHarness` shares. C function pointers cannot capture, so each call finds its
/// harness by what it names: a connection handle, the instance context (the harness itself), or a metric handle.
/// Handles are unique in the process, so harnesses in parallel tests never mix.
enum HarnessHostTable {
    struct Registry {
        var connections: [agenthost_conn_t: PluginHarness] = [:]
        var metrics: [UInt64: PluginHarness] = [:]
    }

    static let registry = Mutex(Registry())
    private static let counter = Atomic<UInt64>(1 << 40)

    static func nextHandle() -> UInt64 { self.counter.add(1, ordering: .relaxed).newValue }

    static func harness(conn: agenthost_conn_t) -> PluginHarness? { self.registry.withLock { $0.connections[conn] } }
    static func harness(ctx: OpaquePointer?) -> PluginHarness? {
        ctx.map { Unmanaged<PluginHarness>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
    }

    /// What `has_function` answers 1 for: the functions this table fills in (no run log).
    static let functionNames: Set<String> = [
        "send", "close", "log", "post", "timer_start", "timer_cancel", "retain_conn", "release_conn", "host_info",
        "has_function", "log_level", "instance_post", "instance_timer_start", "instance_timer_cancel",
        "pause_reading", "resume_reading", "metric_define", "metric_add", "metric_set", "metric_observe",
    ]

    static let ok = agenthost_status_t(AGENTHOST_OK)
    static let closed = agenthost_status_t(AGENTHOST_CLOSED)
    static let badArgument = agenthost_status_t(AGENTHOST_BAD_ARGUMENT)

    /// The table: the 1.0 and 1.2 functions; the run log (1.1) is not simulated, its functions are NULL, so the
    /// Swift SDK reports no run log and C plugins see `AGENTHOST_HOST_HAS(host, log_create)` false.
    // nonisolated(unsafe): written once by the lazy initializer (swift_once), read-only afterwards.
    nonisolated(unsafe) static let table: UnsafePointer<agenthost_host_api_v1> = {
        var table = agenthost_host_api_v1()
        table.struct_size = UInt32(MemoryLayout<agenthost_host_api_v1>.size)
        table.abi_major = UInt32(AGENTHOST_ABI_MAJOR)
        table.abi_minor = UInt32(AGENTHOST_ABI_MINOR)
        // size_t arrives as Int: a length past Int.max is negative and must never reach a buffer pointer.
        table.send = { conn, kind, data, len in
            guard len >= 0, data != nil || len == 0 else { return badArgument }
            let bytes = Array(UnsafeBufferPointer(start: data, count: data == nil ? 0 : len))
            let message: TestMessage
            switch kind {
            case agenthost_message_kind_t(AGENTHOST_MESSAGE_TEXT):
                guard let text = String(validating: bytes, as: UTF8.self) else { return badArgument }
                message = .text(text)
            case agenthost_message_kind_t(AGENTHOST_MESSAGE_BINARY): message = .binary(bytes)
            default: return badArgument
            }
            return harness(conn: conn)?.pluginSent(message, on: conn) ?? closed
        }
        table.close = { conn, code, reason, len in
            guard reason != nil || len == 0, (0...123).contains(len),
                let text = String(validating: UnsafeBufferPointer(start: reason, count: reason == nil ? 0 : len), as: UTF8.self),
                (1000...4999).contains(code), ![1004, 1005, 1006, 1015].contains(code), code < 1016 || code >= 3000
            else { return badArgument }
            return harness(conn: conn)?.pluginClosed(conn, code: code, reason: text) ?? closed
        }
        table.log = { ctx, conn, level, message, len in
            guard len >= 0 else { return }
            let text = String(decoding: UnsafeBufferPointer(start: message, count: message == nil ? 0 : len), as: UTF8.self)
            harness(ctx: ctx)?.state.withLock { $0.logs.append((Int32(level), conn, text)) }
        }
        table.post = { conn, id, data in
            harness(conn: conn)?.schedule(conn: conn, kind: AGENTHOST_EVENT_POSTED, id: id, data: data, after: 0) != nil
                ? ok : closed
        }
        table.timer_start = { conn, delay, data, timerID in
            guard let timerID else { return badArgument }
            let id = nextHandle()
            guard harness(conn: conn)?.schedule(conn: conn, kind: AGENTHOST_EVENT_TIMER, id: id, data: data,
                                                after: delay) != nil
            else { return closed }
            timerID.pointee = id
            return ok
        }
        table.timer_cancel = { conn, id in harness(conn: conn)?.cancel(timer: id, conn: conn) ?? closed }
        table.retain_conn = { conn in harness(conn: conn)?.retain(conn, by: 1) ?? closed }
        table.release_conn = { conn in harness(conn: conn)?.retain(conn, by: -1) ?? badArgument }
        table.host_info = { info in
            guard let info, Int(info.pointee.struct_size) >= MemoryLayout<agenthost_host_info_v1>.size else {
                return badArgument
            }
            info.pointee.abi_major = UInt32(AGENTHOST_ABI_MAJOR)
            info.pointee.abi_minor = UInt32(AGENTHOST_ABI_MINOR)
            withUnsafeMutableBytes(of: &info.pointee.host_version) { field in
                field.initializeMemory(as: UInt8.self, repeating: 0)
                field.copyBytes(from: Array("test-kit".utf8))
            }
            return ok
        }
        table.has_function = { name in
            guard let name else { return 0 }
            return functionNames.contains(String(cString: name)) ? 1 : 0
        }
        table.log_level = { ctx in harness(ctx: ctx)?.logLevel ?? agenthost_log_level_t(AGENTHOST_LOG_TRACE) }
        table.instance_post = { ctx, id, data in
            harness(ctx: ctx)?.schedule(conn: 0, kind: AGENTHOST_EVENT_POSTED, id: id, data: data, after: 0) != nil
                ? ok : closed
        }
        table.instance_timer_start = { ctx, delay, data, timerID in
            guard let timerID else { return badArgument }
            let id = nextHandle()
            guard harness(ctx: ctx)?.schedule(conn: 0, kind: AGENTHOST_EVENT_TIMER, id: id, data: data,
                                              after: delay) != nil
            else { return closed }
            timerID.pointee = id
            return ok
        }
        table.instance_timer_cancel = { ctx, id in harness(ctx: ctx)?.cancel(timer: id, conn: 0) ?? closed }
        table.pause_reading = { conn in harness(conn: conn)?.setPaused(conn, true) ?? closed }
        table.resume_reading = { conn in harness(conn: conn)?.setPaused(conn, false) ?? closed }
        table.metric_define = { ctx, definition, metric in
            guard let harness = harness(ctx: ctx), let definition, let metric else { return badArgument }
            return harness.defineMetric(definition.pointee, into: metric)
        }
        table.metric_add = { metric, values, count, value in updateMetric(metric, values, count, .add, value) }
        table.metric_set = { metric, values, count, value in updateMetric(metric, values, count, .set, value) }
        table.metric_observe = { metric, values, count, value in
            updateMetric(metric, values, count, .observe, value)
        }
        let pointer = UnsafeMutablePointer<agenthost_host_api_v1>.allocate(capacity: 1)
        pointer.initialize(to: table)
        return UnsafePointer(pointer)
    }()

    private static func updateMetric(_ metric: UInt64, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                                     _ update: MetricUpdate, _ value: Double) -> agenthost_status_t {
        guard (0...8).contains(count), count == 0 || values != nil else { return badArgument }
        var labels: [String] = []
        for index in 0..<count {
            guard let value = values?[index] else { return badArgument }
            labels.append(String(cString: value))
        }
        let harness = self.registry.withLock { $0.metrics[metric] }
        return harness?.updateMetric(metric, labels: labels, update, value) ?? badArgument
    }
}
