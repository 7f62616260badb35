import AgentHostCore
import AgentHostRunLog
import CAgentHostPlugin
import Logging
import NIOCore
import Synchronization

/// Adapts one plugin instance's C function table to the core's `WebSocketEndpoint`.
public final class PluginEndpoint: WebSocketEndpoint, @unchecked Sendable {
    // @unchecked: all stored properties are immutable after create; the instance pointer is the plugin's own,
    // and the ABI makes the plugin responsible for synchronising instance state across connections.

    public let name: String
    let descriptor: PluginDescriptor
    let instance: UnsafeMutableRawPointer
    let context: PluginInstanceContext
    let logger: Logger
    /// Names this instance to the run log: its handles are released when it is dropped.
    let instanceID: UInt64

    private static let nextInstanceID = Atomic<UInt64>(1)

    // The callbacks, read once from the descriptor so the per-message path does no lookup.
    let onOpen: @convention(c) (UnsafeMutableRawPointer?, agenthost_conn_t, UnsafePointer<agenthost_open_info_v1>?,
                                UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> agenthost_status_t
    let onMessage: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, agenthost_conn_t,
                                   agenthost_message_kind_t, UnsafePointer<UInt8>?, Int) -> Void
    let onEvent: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, agenthost_conn_t,
                                 UnsafePointer<agenthost_event_v1>?) -> Void
    let onWritable: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, agenthost_conn_t) -> Void)?
    let onError: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, agenthost_conn_t,
                                  agenthost_error_kind_t, UnsafePointer<UInt8>?, Int) -> Void)?
    let onClose: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, agenthost_conn_t, UInt16,
                                 UnsafePointer<UInt8>?, Int) -> Void

    private struct Lifecycle {
        /// Handles of the connections this instance has open.
        var open: Set<UInt64> = []
        /// Connections chosen for this instance whose session has not opened yet.
        var reserved = 0
        var dropped = false
    }

    private let lifecycle = Mutex(Lifecycle())
    /// Signalled when a connection closes or a reservation ends: what a drain waits on.
    let connectionsChanged = StateChangeSignal()
    /// Plugin calls made outside any open connection (run log signals, instance events, on_drain, cancelled events
    /// after on_close) are counted through it, so the drop waits for them. Not the lifecycle lock: a plugin's slow
    /// signal handler would hold up every connection opening or closing on every loop.
    private let callGate = InstanceCallGate()
    /// Instance events and run log signals of this instance run one at a time (the ABI promises it); on_drain and
    /// cancelled connection events are not serialized with them.
    private let instanceEventOrder = Mutex(())

    private init(descriptor: PluginDescriptor, instance: UnsafeMutableRawPointer, context: PluginInstanceContext) {
        let d = descriptor.raw.pointee
        self.name = descriptor.name
        self.descriptor = descriptor
        self.instance = instance
        self.context = context
        self.logger = context.logger
        self.instanceID = Self.nextInstanceID.wrappingAdd(1, ordering: .relaxed).oldValue
        // PluginDescriptor checked these are present.
        self.onOpen = d.on_open!
        self.onMessage = d.on_message!
        self.onEvent = d.on_event!
        self.onWritable = d.on_writable
        self.onError = d.on_error
        self.onClose = d.on_close!
    }

    /// Calls `instance_create` with the plugin's config bytes. The instance's own events fire on `eventLoop`.
    static func create(descriptor: PluginDescriptor, config: [UInt8], logger: Logger, eventLoop: any EventLoop)
        throws(PluginLoadError) -> PluginEndpoint
    {
        let context = PluginInstanceContext(name: descriptor.name, logger: logger, eventLoop: eventLoop)
        var error = [CChar](repeating: 0, count: 512)
        let create = descriptor.raw.pointee.instance_create!
        let instance = config.withUnsafeBufferPointer { config in
            error.withUnsafeMutableBufferPointer { error in
                create(HostFunctionTable.table, context.opaquePointer, config.baseAddress, config.count,
                       error.baseAddress, error.count)
            }
        }
        guard let instance else {
            _ = context.events.close()  // events it started have no instance to go to
            let reason = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw PluginLoadError(.instanceCreate, "instance_create failed: \(reason.isEmpty ? "no reason given" : reason)")
        }
        // The context must outlive every callback; the host never unloads, so it is kept for the process' life.
        _ = Unmanaged.passRetained(context)
        let endpoint = PluginEndpoint(descriptor: descriptor, instance: instance, context: context)
        RunLogHostFunctions.instances.withLock { $0[endpoint.instanceID] = endpoint }
        context.events.attach(endpoint)
        return endpoint
    }

    public func openSession(connection: WebSocketConnection, info: ConnectionInfo) throws -> any WebSocketSession {
        // The reservation becomes an open connection in one step, before on_open runs: a drain polling in between
        // would otherwise see nothing pending, retire the instance, and drop it while on_open is still running.
        self.lifecycle.withLock { state in
            state.reserved -= 1
            state.open.insert(connection.handle)
        }
        self.connectionsChanged.signal()  // a drain retiring the instance closes it too
        // The run log functions need the connection's instance, route and identity, from on_open on.
        RunLogHostFunctions.connections.register(connection.handle, .init(
            instance: self.instanceID, route: info.route,
            owner: RunLogOwner(issuer: info.identity.issuer, subject: info.identity.subject)))
        var connData: UnsafeMutableRawPointer?
        let status = OpenInfoBuffer.with(info) { openInfo in
            self.onOpen(self.instance, connection.handle, openInfo, &connData)
        }
        guard status == agenthost_status_t(AGENTHOST_OK) else {
            self.lifecycle.withLock { _ = $0.open.remove(connection.handle) }
            self.connectionsChanged.signal()
            self.forgetConnection(connection.handle)
            throw PluginCallbackError.openRefused(status)
        }
        return PluginSession(endpoint: self, handle: connection.handle, connData: connData)
    }

    public var decidesUpgrades: Bool { self.descriptor.onUpgrade != nil }

    /// on_upgrade: the plugin accepts (choosing a subprotocol, or leaving it to the host) or refuses with a status
    /// and a body written into a buffer the host lends it.
    public func admit(_ request: UpgradeRequest) -> UpgradeDecision {
        guard let onUpgrade = self.descriptor.onUpgrade else { return .accept(subprotocol: nil) }
        var body = [UInt8](repeating: 0, count: 1024)
        let (status, response) = body.withUnsafeMutableBufferPointer { buffer in
            var response = agenthost_upgrade_response_v1(
                struct_size: UInt32(MemoryLayout<agenthost_upgrade_response_v1>.size), subprotocol: -1, status: 403,
                body: buffer.baseAddress, body_capacity: buffer.count, body_len: 0)
            let status = UpgradeRequestBuffer.with(request) { onUpgrade(self.instance, $0, &response) }
            return (status, response)
        }
        guard status == agenthost_status_t(AGENTHOST_OK) else {
            let text = String(decoding: body.prefix(max(0, min(response.body_len, body.count))), as: UTF8.self)
            return .refuse(status: Int(response.status), body: text)
        }
        guard response.subprotocol != -1 else { return .accept(subprotocol: nil) }
        guard (0..<request.subprotocols.count).contains(Int(response.subprotocol)) else {
            self.logger.error("on_upgrade chose a subprotocol index the client did not offer", metadata: [
                "index": "\(response.subprotocol)", "offered": "\(request.subprotocols.count)"])
            return .refuse(status: 500, body: "")
        }
        return .accept(subprotocol: request.subprotocols[Int(response.subprotocol)])
    }

    public func reserve() -> Bool {
        self.lifecycle.withLock { state in
            guard !state.dropped else { return false }
            state.reserved += 1
            return true
        }
    }

    public func cancelReservation() {
        self.lifecycle.withLock { $0.reserved -= 1 }
        self.connectionsChanged.signal()
    }

    func sessionClosed(handle: UInt64) {
        self.lifecycle.withLock { _ = $0.open.remove(handle) }
        self.forgetConnection(handle)
        self.connectionsChanged.signal()
    }

    /// The connection is gone: its run log watches end (LOG_END cancelled, after on_close).
    private func forgetConnection(_ handle: UInt64) {
        RunLogHostFunctions.connections.remove(handle)
        RunLogHostFunctions.service.connectionClosed(handle)
    }

    /// A run log signal for a log this instance writes: on_event with conn 0 and conn_data NULL, on the caller's
    /// (host) thread. Not after the instance was dropped.
    func deliverSignal(_ event: DeferredEvent) {
        event.logBytes.withUnsafeBufferPointer { bytes in
            var cEvent = agenthost_event_v1(
                struct_size: UInt32(MemoryLayout<agenthost_event_v1>.size),
                kind: agenthost_event_kind_t(AGENTHOST_EVENT_LOG_SIGNAL), id: event.id,
                data: UnsafeMutableRawPointer(bitPattern: event.context), cancelled: 0, log_seq: 0,
                log_bytes: agenthost_bytes(ptr: bytes.baseAddress, len: bytes.count))
            self.ifNotDropped { self.instanceEventOrder.withLock { _ in self.onEvent(self.instance, nil, 0, &cEvent) } }
        }
    }

    /// One of the instance's own posts or timers fired (or was cancelled): on_event with conn 0 and conn_data NULL,
    /// under the call gate, so never concurrently with another instance event or signal, nor after the drop.
    func deliverInstanceEvent(key: UInt64, from events: InstanceEvents) {
        // Taken inside the gate: once the drop has closed it, what is still pending is the drop's to hand back.
        self.ifNotDropped {
            self.instanceEventOrder.withLock { _ in
                if let event = events.take(key) { self.callOnEvent(event) }
            }
        }
    }

    /// on_event for the instance (conn 0); call under the gate.
    private func callOnEvent(_ event: DeferredEvent) {
        var cEvent = agenthost_event_v1(
            struct_size: UInt32(MemoryLayout<agenthost_event_v1>.size),
            kind: agenthost_event_kind_t(event.kind == .timer ? AGENTHOST_EVENT_TIMER : AGENTHOST_EVENT_POSTED),
            id: event.id, data: UnsafeMutableRawPointer(bitPattern: event.context), cancelled: event.cancelled ? 1 : 0,
            log_seq: 0, log_bytes: agenthost_bytes(ptr: nil, len: 0))
        self.onEvent(self.instance, nil, 0, &cEvent)
    }

    private let drainNoticeGiven = Atomic<Bool>(false)

    /// Tells the instance (once) that its generation drains: on_drain, on the caller's thread (a host thread that
    /// is not an event loop), under the call gate. Nothing when the plugin has no on_drain.
    public func notifyDrain() {
        guard let onDrain = self.descriptor.onDrain,
            !self.drainNoticeGiven.exchange(true, ordering: .relaxed)
        else { return }
        self.ifNotDropped { onDrain(self.instance) }
    }

    /// Connections this instance has open.
    public var openConnections: Int { self.lifecycle.withLock { $0.open.count } }

    /// Open connections plus those about to open: what a drain must wait for.
    public var pendingConnections: Int { self.lifecycle.withLock { $0.open.count + $0.reserved } }

    /// Runs (live run logs) this instance writes: a draining generation is kept until they end.
    public var liveRuns: Int { RunLogHostFunctions.service.liveLogsWritten(instance: self.instanceID) }

    /// Connections chosen for this instance that have not opened yet.
    public var reservedConnections: Int { self.lifecycle.withLock { $0.reserved } }

    /// Handles of the connections this instance has open.
    public var openHandles: [UInt64] { self.lifecycle.withLock { Array($0.open) } }

    /// Runs `body` (a call into the plugin for a connection that is already closed) unless the instance is
    /// dropped. Only cancelled events take this path, after their connection's on_close: a drop can race with them.
    func ifNotDropped(_ body: () -> Void) {
        self.callGate.run(body)
    }

    /// Drops the instance if no connection is open or about to open, atomically with refusing new reservations;
    /// returns whether it did (or had). Call after every event loop has run the work queued before (see
    /// `PluginManager`); later stray events are not delivered.
    @discardableResult
    public func dropInstance(force: Bool = false) -> Bool {
        let drop = self.lifecycle.withLock { state -> Bool? in
            if state.dropped { return false }
            guard force || (state.open.isEmpty && state.reserved == 0) else { return nil }
            state.dropped = true
            return true
        }
        guard let drop else { return false }
        if drop {
            // Waits for a signal or cancelled event being delivered now; none is delivered after (not even one
            // queued for a writer handle released just below). The instance's own pending posts and timers are
            // handed back cancelled first, as the ABI promises.
            _ = self.callGate.close()
            for event in self.context.events.close() { self.callOnEvent(event) }
            // Its run log handles go with it: live logs it writes end (writer gone), its watches are cancelled.
            RunLogHostFunctions.service.releaseAll(instance: self.instanceID)
            RunLogHostFunctions.instances.withLock { _ = $0.removeValue(forKey: self.instanceID) }
            self.descriptor.raw.pointee.instance_drop?(self.instance)
        }
        return true
    }
}

enum PluginCallbackError: Error, CustomStringConvertible {
    case openRefused(agenthost_status_t)

    var description: String {
        switch self {
        case .openRefused(let status): return "on_open refused the connection (status \(status))"
        }
    }
}
