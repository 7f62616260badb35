import CAgentHostPlugin

/// Builds the C descriptor for a Swift plugin type and the C callbacks that forward to it.
///
/// C function pointers cannot capture, so the callbacks are non-generic trampolines: the instance pointer they get
/// back from the host is a retained `InstanceBox` that knows the plugin type; per-connection state is a retained
/// `ConnectionBox` in `conn_data`, released in on_close.
public enum PluginExport {
    /// The descriptor for `Plugin`. Call it from your `agenthost_plugin_entry_v1`.
    public static func descriptor<Plugin: AgentHostPlugin>(for type: Plugin.Type) -> UnsafePointer<agenthost_plugin_v1> {
        if let existing = exported { return existing }
        factory = { host, config in
            let plugin = try Plugin(host: host, config: config)
            return InstanceBox(host: host, drain: { plugin.drain() }, admit: { plugin.admit($0) }) { connection, info in
                try plugin.open(connection, info: info)
            }
        }
        let routes = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: Plugin.routes.count)
        for (index, route) in Plugin.routes.enumerated() { routes[index] = permanentCString(route) }
        let descriptor = UnsafeMutablePointer<agenthost_plugin_v1>.allocate(capacity: 1)
        descriptor.initialize(to: agenthost_plugin_v1(
            struct_size: UInt32(MemoryLayout<agenthost_plugin_v1>.size),
            abi_major: UInt32(AGENTHOST_ABI_MAJOR),
            abi_minor: UInt32(AGENTHOST_ABI_MINOR),
            name: permanentCString(Plugin.name),
            version: permanentCString(Plugin.version),
            routes: UnsafePointer(routes),
            route_count: Plugin.routes.count,
            instance_create: instanceCreate,
            instance_drop: instanceDrop,
            on_open: onOpen,
            on_message: onMessage,
            on_event: onEvent,
            on_writable: onWritable,
            on_error: onError,
            on_close: onClose,
            on_drain: onDrain,
            on_upgrade: Plugin.decidesUpgrades ? onUpgrade : nil))
        exported = UnsafePointer(descriptor)
        return UnsafePointer(descriptor)
    }
}

// The host calls the entry once per loaded copy of the library, from one thread, before any other callback:
// these are written there and only read afterwards.
nonisolated(unsafe) private var exported: UnsafePointer<agenthost_plugin_v1>?
nonisolated(unsafe) private var factory: ((PluginHost, [UInt8]) throws -> InstanceBox)?

/// A C string that lives as long as the process (the descriptor's strings must never move).
private func permanentCString(_ string: String) -> UnsafePointer<CChar> {
    let utf8 = Array(string.utf8CString)
    let storage = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
    storage.initialize(from: utf8, count: utf8.count)
    return UnsafePointer(storage)
}

final class InstanceBox {
    let host: PluginHost
    let drain: () -> Void
    let admit: (UpgradeRequestInfo) -> UpgradeAnswer
    let open: (Connection, OpenInfo) throws -> any ConnectionHandler

    init(host: PluginHost, drain: @escaping () -> Void = {},
         admit: @escaping (UpgradeRequestInfo) -> UpgradeAnswer = { _ in .accept(subprotocol: nil) },
         open: @escaping (Connection, OpenInfo) throws -> any ConnectionHandler) {
        self.host = host
        self.drain = drain
        self.admit = admit
        self.open = open
    }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> InstanceBox {
        Unmanaged<InstanceBox>.fromOpaque(pointer!).takeUnretainedValue()
    }
}

final class ConnectionBox {
    let handler: any ConnectionHandler
    init(_ handler: any ConnectionHandler) { self.handler = handler }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> ConnectionBox? {
        pointer.map { Unmanaged<ConnectionBox>.fromOpaque($0).takeUnretainedValue() }
    }
}

private func instanceCreate(_ api: UnsafePointer<agenthost_host_api_v1>?, _ context: OpaquePointer?,
                            _ config: UnsafePointer<UInt8>?, _ configLength: Int, _ errorBuffer: UnsafeMutablePointer<CChar>?,
                            _ errorCapacity: Int) -> UnsafeMutableRawPointer? {
    guard let api, let factory else { return nil }
    let bytes = config.map { Array(UnsafeBufferPointer(start: $0, count: configLength)) } ?? []
    do {
        let box = try factory(PluginHost(api: api, context: context), bytes)
        return Unmanaged.passRetained(box).toOpaque()
    } catch {
        if let buffer = errorBuffer, errorCapacity > 0 {
            let message = Array(String(describing: error).utf8.prefix(errorCapacity - 1))
            for (index, byte) in message.enumerated() { buffer[index] = CChar(bitPattern: byte) }
            buffer[message.count] = 0
        }
        return nil
    }
}

private func instanceDrop(_ instance: UnsafeMutableRawPointer?) {
    guard let instance else { return }
    let context: OpaquePointer?
    do {
        // The box's last reference: the plugin's deinit runs here (it may still end runs and release logs).
        let box = Unmanaged<InstanceBox>.fromOpaque(instance).takeRetainedValue()
        context = box.host.context
    }
    // Then every signal handler of this instance goes: none outlives it, even one whose log was never released,
    // and a context the host reuses for a later instance finds none of them.
    RunLogSignals.unregisterAll(context: context)
}

private func onOpen(_ instance: UnsafeMutableRawPointer?, _ conn: agenthost_conn_t,
                    _ info: UnsafePointer<agenthost_open_info_v1>?,
                    _ connData: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> agenthost_status_t {
    let box = InstanceBox.from(instance)
    guard let info, let connData else { return agenthost_status_t(AGENTHOST_BAD_ARGUMENT) }
    do {
        let handler = try box.open(Connection(handle: conn, host: box.host), OpenInfo(info))
        connData.pointee = Unmanaged.passRetained(ConnectionBox(handler)).toOpaque()
        return agenthost_status_t(AGENTHOST_OK)
    } catch {
        box.host.log(.warning, "refused connection: \(error)", connection: conn)
        return agenthost_status_t(AGENTHOST_ERROR)
    }
}

private func onMessage(_ instance: UnsafeMutableRawPointer?, _ connData: UnsafeMutableRawPointer?,
                       _ conn: agenthost_conn_t, _ kind: agenthost_message_kind_t, _ data: UnsafePointer<UInt8>?,
                       _ length: Int) {
    guard let box = ConnectionBox.from(connData) else { return }
    let bytes = UnsafeBufferPointer(start: data, count: data == nil ? 0 : length)
    if kind == agenthost_message_kind_t(AGENTHOST_MESSAGE_TEXT) {
        box.handler.didReceive(.text(String(decoding: bytes, as: UTF8.self)))
    } else {
        box.handler.didReceive(.binary(Array(bytes)))
    }
}

private func onEvent(_ instance: UnsafeMutableRawPointer?, _ connData: UnsafeMutableRawPointer?,
                     _ conn: agenthost_conn_t, _ event: UnsafePointer<agenthost_event_v1>?) {
    guard let event else { return }
    // Instance-level events (a run log signal) come with conn 0 and no conn_data: dispatch by kind, not by data.
    PluginEvents.dispatch(instanceContext: instance.flatMap { InstanceBox.from($0).host.context }, event)
}

private func onDrain(_ instance: UnsafeMutableRawPointer?) {
    guard let instance else { return }
    InstanceBox.from(instance).drain()
}

private func onUpgrade(_ instance: UnsafeMutableRawPointer?, _ request: UnsafePointer<agenthost_upgrade_request_v1>?,
                       _ response: UnsafeMutablePointer<agenthost_upgrade_response_v1>?) -> agenthost_status_t {
    guard let instance, let request, let response else { return agenthost_status_t(AGENTHOST_OK) }
    let info = UpgradeRequestInfo(request)
    switch InstanceBox.from(instance).admit(info) {
    case .accept(let subprotocol):
        if let subprotocol {
            // An answer the client did not offer is the host's to refuse (500): pass an index past the end.
            response.pointee.subprotocol = Int32(info.subprotocols.firstIndex(of: subprotocol) ?? info.subprotocols.count)
        }
        return agenthost_status_t(AGENTHOST_OK)
    case .refuse(let status, let body):
        response.pointee.status = UInt16(clamping: status)
        let bytes = Array(body.utf8.prefix(response.pointee.body_capacity))
        if let buffer = response.pointee.body {
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
            response.pointee.body_len = bytes.count
        }
        return agenthost_status_t(AGENTHOST_ERROR)
    }
}

private func onWritable(_ instance: UnsafeMutableRawPointer?, _ connData: UnsafeMutableRawPointer?,
                        _ conn: agenthost_conn_t) {
    ConnectionBox.from(connData)?.handler.didBecomeWritable()
}

private func onError(_ instance: UnsafeMutableRawPointer?, _ connData: UnsafeMutableRawPointer?,
                     _ conn: agenthost_conn_t, _ kind: agenthost_error_kind_t, _ message: UnsafePointer<UInt8>?,
                     _ length: Int) {
    let text = String(decoding: UnsafeBufferPointer(start: message, count: message == nil ? 0 : length), as: UTF8.self)
    ConnectionBox.from(connData)?.handler.didFail(kind: ErrorKind(kind), message: text)
}

private func onClose(_ instance: UnsafeMutableRawPointer?, _ connData: UnsafeMutableRawPointer?,
                     _ conn: agenthost_conn_t, _ code: UInt16, _ reason: UnsafePointer<UInt8>?, _ length: Int) {
    guard let connData else { return }
    let box = Unmanaged<ConnectionBox>.fromOpaque(connData).takeRetainedValue()
    let text = String(decoding: UnsafeBufferPointer(start: reason, count: reason == nil ? 0 : length), as: UTF8.self)
    box.handler.didClose(code: code, reason: text)
}
