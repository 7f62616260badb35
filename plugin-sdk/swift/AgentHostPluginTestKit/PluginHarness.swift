import CAgentHostPlugin
import Glibc
import Synchronization

/// Drives a plugin in-process, without a server: the test plays the host and its clients. Load a built plugin
/// (`.so` from C, Swift, Rust...) or a descriptor linked into the test, then open connections, send messages, move
/// the clock, and read what the plugin sent, closed, logged and counted.
///
/// ```swift
/// let harness = try PluginHarness(library: ".build/debug/libagenthost-echo.so")
/// let client = try harness.connect(route: "/echo")
/// client.send("hi")
/// #expect(client.takeReceived() == [.text("hi")])
/// ```
///
/// Like the host's event loop, the harness calls the plugin one callback at a time on the test's thread, and after
/// each one delivers the posts and timers that are due. Time is the harness's own: `advance(milliseconds:)` fires
/// timers, nothing waits on a real clock. A plugin's own threads may call the host (send, post) at any time; what
/// they post waits for the next `runPending()`, and `waitForMessages` awaits what they send. Run logs (ABI 1.1) are
/// not simulated: the table has none, as a 1.0 host would.
public final class PluginHarness: @unchecked Sendable {
    // @unchecked: the plugin's callbacks run on the caller's thread, one at a time (the test drives them); shared
    // state is `state`.
    public let name: String
    public let version: String
    public let routes: [String]
    let descriptor: UnsafePointer<agenthost_plugin_v1>
    let state = Mutex(HarnessState())
    private var instance: UnsafeMutableRawPointer?
    var instancePointer: UnsafeMutableRawPointer? { self.instance }
    private var drained = false
    /// The log level `log_level` reports (default: everything).
    public var logLevel = agenthost_log_level_t(AGENTHOST_LOG_TRACE)

    /// A 1.0 descriptor's size: everything up to and including on_close (AGENTHOST_PLUGIN_V1_MIN_SIZE).
    static let minimumDescriptorSize = MemoryLayout<agenthost_plugin_v1>.offset(of: \agenthost_plugin_v1.on_close)!
        + MemoryLayout<UnsafeRawPointer>.size

    /// Loads a built plugin from a private copy (two harnesses of one file must not share the library's globals,
    /// as two host generations do not), then calls its entry and `instance_create` with `config`.
    public convenience init(library path: String, config: String = "{}") throws {
        let copy = try Self.privateCopy(of: path)
        guard let handle = dlopen(copy, RTLD_NOW | RTLD_LOCAL) else {
            throw PluginHarnessError("dlopen \(path): \(dlerror().map { String(cString: $0) } ?? "failed")")
        }
        // Never dlclosed: Swift code cannot be unloaded safely, as in the host.
        guard let symbol = dlsym(handle, AGENTHOST_PLUGIN_ENTRY_SYMBOL) else {
            throw PluginHarnessError("\(path) exports no \(AGENTHOST_PLUGIN_ENTRY_SYMBOL)")
        }
        let entry = unsafeBitCast(symbol, to: agenthost_plugin_entry_v1_fn.self)
        guard let descriptor = entry(UInt32(AGENTHOST_ABI_MINOR)) else {
            throw PluginHarnessError("\(path): the entry refused this host")
        }
        try self.init(descriptor: descriptor, config: config)
    }

    /// Drives a descriptor linked into the test (a Swift plugin: `PluginExport.descriptor(for: MyPlugin.self)`).
    public init(descriptor: UnsafePointer<agenthost_plugin_v1>, config: String = "{}") throws {
        let d = descriptor.pointee
        guard d.abi_major == UInt32(AGENTHOST_ABI_MAJOR), Int(d.struct_size) >= Self.minimumDescriptorSize,
            let name = d.name, let version = d.version, let routes = d.routes, let create = d.instance_create
        else { throw PluginHarnessError("not a version-1 descriptor with a name, routes and instance_create") }
        self.descriptor = descriptor
        self.name = String(cString: name)
        self.version = String(cString: version)
        self.routes = (0..<d.route_count).compactMap { routes[$0].map { String(cString: $0) } }
        var error = [CChar](repeating: 0, count: 512)
        let bytes = Array(config.utf8)
        // Retained until drop(): a plugin thread calling log or instance_post after the test let the harness go
        // must not find it freed.
        let context = OpaquePointer(Unmanaged.passRetained(self).toOpaque())
        let instance = bytes.withUnsafeBufferPointer { config in
            error.withUnsafeMutableBufferPointer {
                create(HarnessHostTable.table, context, config.baseAddress, config.count, $0.baseAddress, $0.count)
            }
        }
        guard let instance else {
            Unmanaged.passUnretained(self).release()
            let reason = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw PluginHarnessError("instance_create failed: " + reason)
        }
        self.instance = instance
        self.runPending()
    }

    private static func privateCopy(of path: String) throws -> String {
        var template = Array("/tmp/agenthost-testkit-XXXXXX.so".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, 3) }
        guard fd >= 0, let source = fopen(path, "rb") else { throw PluginHarnessError("cannot copy \(path)") }
        defer { fclose(source) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let read = fread(&buffer, 1, buffer.count, source)
            if read == 0 { break }
            guard write(fd, buffer, read) == read else { close(fd); throw PluginHarnessError("cannot copy \(path)") }
        }
        close(fd)
        return String(cString: template)
    }

    // MARK: Connections

    /// Asks the plugin's `on_upgrade` (accepted with no choice when it has none).
    public func upgrade(target: String, headers: [(String, String)] = [], subprotocols: [String] = [],
                        subject: String = "", issuer: String = "") -> TestUpgradeOutcome {
        guard let onUpgrade = self.optionalCallback(\.on_upgrade) else { return .accepted(subprotocol: nil) }
        let route = String(target.prefix { $0 != "?" })
        var body = [UInt8](repeating: 0, count: 1024)
        let strings = [route, target, "127.0.0.1:1", subject, issuer, "", "{}"] + headers.flatMap { [$0.0, $0.1] }
            + subprotocols
        return withBorrowedBytes(strings) { bytes in
            let headerArray = headers.indices.map { agenthost_header_v1(name: bytes[7 + 2 * $0], value: bytes[8 + 2 * $0]) }
            let offered = Array(bytes.suffix(subprotocols.count))
            return headerArray.withUnsafeBufferPointer { headerPointer in
                offered.withUnsafeBufferPointer { offeredPointer in
                    var request = agenthost_upgrade_request_v1(
                        struct_size: UInt32(MemoryLayout<agenthost_upgrade_request_v1>.size), route: bytes[0],
                        request_target: bytes[1], remote_address: bytes[2], headers: headerPointer.baseAddress,
                        header_count: headers.count, subprotocols: offeredPointer.baseAddress,
                        subprotocol_count: subprotocols.count, identity_subject: bytes[3], identity_issuer: bytes[4],
                        identity_scopes: bytes[5], identity_claims_json: bytes[6])
                    return body.withUnsafeMutableBufferPointer { buffer in
                        var response = agenthost_upgrade_response_v1(
                            struct_size: UInt32(MemoryLayout<agenthost_upgrade_response_v1>.size), subprotocol: -1,
                            status: 403, body: buffer.baseAddress, body_capacity: buffer.count, body_len: 0)
                        let status = onUpgrade(self.instance, &request, &response)
                        guard status == agenthost_status_t(AGENTHOST_OK) else {
                            let text = String(decoding: buffer.prefix(min(response.body_len, buffer.count)), as: UTF8.self)
                            return .refused(status: Int(response.status), body: text)
                        }
                        let index = Int(response.subprotocol)
                        return .accepted(subprotocol: subprotocols.indices.contains(index) ? subprotocols[index] : nil)
                    }
                }
            }
        }
    }

    /// Opens a connection (`on_open`); throws if the plugin refuses it. `target` defaults to the route.
    public func connect(route: String, target: String? = nil, subprotocol: String = "", subject: String = "",
                        issuer: String = "", scopes: [String] = []) throws -> TestConnection {
        let handle = HarnessHostTable.nextHandle()
        self.state.withLock { $0.connections[handle] = HarnessState.Connection(route: route) }
        HarnessHostTable.registry.withLock { $0.connections[handle] = self }
        var connData: UnsafeMutableRawPointer?
        let strings = [route, target ?? route, "127.0.0.1:1", subprotocol, subject, issuer,
                       scopes.joined(separator: " "), "{}"]
        let status = withBorrowedBytes(strings) { bytes in
            var info = agenthost_open_info_v1(
                struct_size: UInt32(MemoryLayout<agenthost_open_info_v1>.size), route: bytes[0],
                request_target: bytes[1], remote_address: bytes[2], subprotocol: bytes[3], identity_subject: bytes[4],
                identity_issuer: bytes[5], identity_scopes: bytes[6], identity_claims_json: bytes[7])
            return self.descriptor.pointee.on_open(self.instance, handle, &info, &connData)
        }
        guard status == agenthost_status_t(AGENTHOST_OK) else {
            self.forget(handle)
            throw PluginHarnessError("on_open refused the connection (status \(status))")
        }
        let address = UInt(bitPattern: connData)
        self.state.withLock { $0.connections[handle]?.connData = address }
        self.runPending()
        return TestConnection(harness: self, handle: handle)
    }

    // MARK: Time and deferred events

    /// Delivers every post and timer due at the harness's current time (and plugin closes), oldest first.
    public func runPending() {
        while let event = self.state.withLock({ $0.takeDue() }) { self.deliver(event) }
        // Messages held while a connection was paused, once it resumed: in order, after the callback that resumed.
        while let (handle, message) = self.state.withLock({ state -> (agenthost_conn_t, TestMessage)? in
            guard let (handle, connection) = state.connections.first(where: {
                $0.value.open && !$0.value.paused && !$0.value.held.isEmpty
            }) else { return nil }
            state.connections[handle]?.held = Array(connection.held.dropFirst())
            return (handle, connection.held[0])
        }) {
            self.dispatch(message, to: handle)
        }
        let closing = self.state.withLock { state in
            state.connections.filter { $0.value.open && $0.value.closedByPlugin != nil }.map(\.key)
        }
        for handle in closing {
            let (code, reason) = self.state.withLock { $0.connections[handle]?.closedByPlugin } ?? (1000, "")
            self.finish(handle, code: code, reason: reason)
        }
    }

    /// Moves the clock on and fires what falls due, in time order.
    public func advance(milliseconds: UInt64) {
        let target = self.state.withLock { $0.nowMilliseconds &+ milliseconds }
        while true {
            let next = self.state.withLock { state in state.pending.filter { !$0.cancelled }.map(\.due).min() }
            guard let next, next <= target else { break }
            self.state.withLock { $0.nowMilliseconds = max($0.nowMilliseconds, next) }
            self.runPending()
        }
        self.state.withLock { $0.nowMilliseconds = target }
        self.runPending()
    }

    /// The harness's clock, in milliseconds since the plugin was created.
    public var nowMilliseconds: UInt64 { self.state.withLock { $0.nowMilliseconds } }

    // MARK: Lifecycle

    /// `on_drain`, as when a new version takes over (once: `drop()` does not call it again).
    public func drain() {
        guard !self.drained, self.instance != nil else { return }
        self.drained = true
        self.optionalCallback(\.on_drain)?(self.instance)
        self.runPending()
    }

    /// As the host retires a generation: `on_drain`, then every open connection closes (1012), pending events
    /// come back cancelled, and `instance_drop`.
    public func drop() {
        guard self.instance != nil else { return }
        self.drain()
        let open = self.state.withLock { $0.connections.filter { $0.value.open }.map(\.key) }
        for handle in open { self.finish(handle, code: 1012, reason: "service restart") }
        self.state.withLock { $0.dropping = true }
        let pending = self.state.withLock { state -> [HarnessState.Pending] in
            defer { state.pending = [] }
            return state.pending
        }
        for var event in pending {
            event.cancelled = true
            self.deliver(event)
        }
        if let instance = self.instance { self.descriptor.pointee.instance_drop(instance) }
        self.instance = nil
        Unmanaged.passUnretained(self).release()
    }

    // MARK: What the plugin said

    /// Every line the plugin logged: (level, connection or 0, message).
    public var logs: [(level: Int32, conn: UInt64, message: String)] { self.state.withLock { $0.logs } }

    /// A counter's or gauge's value (or a histogram's sum), by metric name (without `agenthost_plugin_`) and label
    /// values in the defined order; nil if never updated.
    public func metric(_ name: String, labels: [String] = []) -> Double? {
        self.state.withLock { $0.metrics.values.first { $0.name == name }?.values[labels] }
    }

    /// A histogram's observations.
    public func observations(_ name: String, labels: [String] = []) -> [Double] {
        self.state.withLock { $0.metrics.values.first { $0.name == name }?.observations[labels] ?? [] }
    }

    // MARK: Plumbing

    func deliver(_ event: HarnessState.Pending) {
        let (address, isOpen) = self.state.withLock { state -> (UInt, Bool) in
            guard event.conn != 0, let connection = state.connections[event.conn] else { return (0, event.conn == 0) }
            return (connection.connData, connection.open)
        }
        let connData = UnsafeMutableRawPointer(bitPattern: address)
        var cEvent = agenthost_event_v1(
            struct_size: UInt32(MemoryLayout<agenthost_event_v1>.size), kind: event.kind, id: event.id,
            data: UnsafeMutableRawPointer(bitPattern: event.data), cancelled: event.cancelled || !isOpen ? 1 : 0, log_seq: 0,
            log_bytes: agenthost_bytes(ptr: nil, len: 0))
        guard let instance = self.instance else { return }
        self.descriptor.pointee.on_event(instance, isOpen ? connData : nil, event.conn, &cEvent)
    }

    /// The client's message: to the plugin now, or behind the held ones while it paused reading or they wait to be
    /// replayed (as the host keeps order).
    func deliver(_ message: TestMessage, to handle: agenthost_conn_t) {
        let queued = self.state.withLock { state -> Bool in
            guard let connection = state.connections[handle], connection.open else { return true }
            guard connection.paused || !connection.held.isEmpty else { return false }
            state.connections[handle]?.held.append(message)
            return true
        }
        if queued {
            self.runPending()
        } else {
            self.dispatch(message, to: handle)
        }
    }

    /// on_message, then whatever fell due.
    private func dispatch(_ message: TestMessage, to handle: agenthost_conn_t) {
        guard let instance = self.instance,
            let address = self.state.withLock({ state -> UInt? in
                guard let connection = state.connections[handle], connection.open else { return nil }
                return connection.connData
            })
        else { return }
        let connData = UnsafeMutableRawPointer(bitPattern: address)
        switch message {
        case .text(let text):
            var text = text
            text.withUTF8 { bytes in
                self.descriptor.pointee.on_message(instance, connData, handle,
                                                   agenthost_message_kind_t(AGENTHOST_MESSAGE_TEXT), bytes.baseAddress,
                                                   bytes.count)
            }
        case .binary(let bytes):
            bytes.withUnsafeBufferPointer { bytes in
                self.descriptor.pointee.on_message(instance, connData, handle,
                                                   agenthost_message_kind_t(AGENTHOST_MESSAGE_BINARY),
                                                   bytes.baseAddress, bytes.count)
            }
        }
        self.runPending()
    }

    /// on_close once; then the connection's pending events come back cancelled.
    func finish(_ handle: agenthost_conn_t, code: UInt16, reason: String) {
        guard let instance = self.instance,
            let address = self.state.withLock({ state -> UInt? in
                guard let connection = state.connections[handle], connection.open else { return nil }
                state.connections[handle]?.open = false
                // Its timers and posts come back cancelled right after on_close, not at their due time.
                for index in state.pending.indices where state.pending[index].conn == handle {
                    state.pending[index].cancelled = true
                }
                return connection.connData
            })
        else { return }
        let connData = UnsafeMutableRawPointer(bitPattern: address)
        var reason = reason
        reason.withUTF8 { bytes in
            self.descriptor.pointee.on_close(instance, connData, handle, code, bytes.baseAddress, bytes.count)
        }
        self.runPending()  // its pending events, handed back cancelled
        if self.state.withLock({ $0.connections[handle]?.retains ?? 0 }) == 0 { self.forget(handle) }
    }

    func forget(_ handle: agenthost_conn_t) {
        HarnessHostTable.registry.withLock { _ = $0.connections.removeValue(forKey: handle) }
    }

    private func optionalCallback<Callback>(_ field: KeyPath<agenthost_plugin_v1, Callback?>) -> Callback? {
        guard let offset = MemoryLayout<agenthost_plugin_v1>.offset(of: field),
            Int(self.descriptor.pointee.struct_size) >= offset + MemoryLayout<UnsafeRawPointer>.size
        else { return nil }
        return self.descriptor.pointee[keyPath: field]
    }
}

/// Calls `body` with each string as borrowed `agenthost_bytes` into one buffer that lives for the call.
func withBorrowedBytes<R>(_ strings: [String], _ body: ([agenthost_bytes]) -> R) -> R {
    var storage: [UInt8] = []
    var ranges: [Range<Int>] = []
    for string in strings {
        let start = storage.count
        storage.append(contentsOf: string.utf8)
        ranges.append(start..<storage.count)
    }
    storage.append(0)
    return storage.withUnsafeBufferPointer { base in
        body(ranges.map { agenthost_bytes(ptr: base.baseAddress! + $0.lowerBound, len: $0.count) })
    }
}
