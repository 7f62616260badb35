import CAgentHostPlugin
import Synchronization

/// A host for SDK unit tests: a real `agenthost_host_api_v1` table (ABI 1.1) whose sockets record what plugins
/// send and whose run log lives in memory. Nothing calls the plugin back on its own: run log events (entries,
/// ends, signals) wait until the test calls `pump()`, which delivers them in order to the sinks the test
/// installed (the SDK's event dispatch), as an event loop would, one at a time. So tests are deterministic and
/// need no sleeps.
///
/// Every handle (connection, log, watch) is unique in the process, so tests running in parallel share the one C
/// table: each call finds its host by handle.
public final class FakeHost: @unchecked Sendable {
    // @unchecked: `api` points to a table written once in init and freed in deinit; everything else is `state`.
    /// Called with every event for a connection (and, with conn 0, every signal of the instance).
    public typealias Sink = @Sendable (_ conn: agenthost_conn_t, UnsafePointer<agenthost_event_v1>) -> Void

    let state = Mutex(State())
    /// The ABI minor version the table reports (0: a host without the run log).
    public let abiMinor: UInt32
    /// The table's address: pass it to `PluginHost(api:context:)`.
    public let api: UnsafePointer<agenthost_host_api_v1>

    public init(abiMinor: UInt32 = 1) {
        self.abiMinor = abiMinor
        let table = UnsafeMutablePointer<agenthost_host_api_v1>.allocate(capacity: 1)
        table.initialize(to: FakeHostTable.make(abiMinor: abiMinor))
        self.api = UnsafePointer(table)
    }

    deinit {
        let (conns, logs) = self.state.withLock { (Array($0.connections.keys), Array($0.handles.keys)) }
        FakeHostTable.registry.withLock { registry in
            for conn in conns { registry.connections[conn] = nil }
            for log in logs { registry.logs[log] = nil }
        }
        UnsafeMutablePointer(mutating: self.api).deallocate()
    }

    // MARK: Sockets

    /// Opens a socket on `route` for `subject` (empty: anonymous) of `issuer`.
    public func connect(route: String, subject: String, issuer: String = "https://idp") -> agenthost_conn_t {
        let handle = FakeHostTable.nextHandle()
        self.state.withLock { $0.connections[handle] = Socket(route: route, subject: subject, issuer: issuer) }
        FakeHostTable.registry.withLock { $0.connections[handle] = self }
        return handle
    }

    /// What `send` answers for `conn` (default `.ok`: AGENTHOST_OK). Return BACKPRESSURE to stop its watches.
    public func onSend(_ conn: agenthost_conn_t, _ answer: @escaping @Sendable (String) -> agenthost_status_t) {
        self.state.withLock { $0.connections[conn]?.onSend = answer }
    }

    /// Where the events of `conn` go (conn 0: the instance's signals).
    public func setSink(_ conn: agenthost_conn_t, _ sink: @escaping Sink) {
        self.state.withLock { state in
            if conn == 0 { state.instanceSink = sink } else { state.connections[conn]?.sink = sink }
        }
    }

    public func sent(_ conn: agenthost_conn_t) -> [String] { self.state.withLock { $0.connections[conn]?.sent ?? [] } }
    public func closed(_ conn: agenthost_conn_t) -> (code: UInt16, reason: String)? {
        self.state.withLock { $0.connections[conn]?.closed }
    }

    /// The socket closes (the client went away): its watches end cancelled at the next `pump()`.
    public func disconnect(_ conn: agenthost_conn_t) {
        self.state.withLock { state in
            if state.connections[conn]?.closed == nil { state.connections[conn]?.closed = (1006, "") }
            for (id, watch) in state.watches where watch.conn == conn { state.watches[id]?.cancelled = true }
        }
    }

    /// The socket drained: its paused watches go on (as the host does at on_writable).
    public func writable(_ conn: agenthost_conn_t) { self.state.withLock { $0.connections[conn]?.blocked = false } }

    // MARK: The run log, as the test sees it

    /// The largest entry `log_append` accepts (BAD_ARGUMENT past it), as the host's `max_entry_bytes`.
    public func setMaxEntryBytes(_ limit: Int) { self.state.withLock { $0.maxEntryBytes = limit } }

    /// The entries of the log `key` on `route` (of `subject`: "" for anonymous; nil: the first owner's), as text,
    /// oldest kept first.
    public func entries(route: String, key: String, subject: String? = nil) -> [String] {
        self.state.withLock { state in
            state.name(route: route, key: key, subject: subject).flatMap { state.logs[$0] }?.entries
                .map { String(decoding: $0.bytes, as: UTF8.self) } ?? []
        }
    }

    public func endStatus(route: String, key: String, subject: String? = nil) -> String? {
        self.state.withLock { state in
            state.name(route: route, key: key, subject: subject).flatMap { state.logs[$0] }?.endStatus
        }
    }

    /// How many owners have a log `key` on `route`.
    public func logCount(route: String, key: String) -> Int {
        self.state.withLock { $0.names(route: route, key: key, subject: nil).count }
    }

    /// Handles not yet released, and watches not yet ended (what tests check is freed).
    public var openHandles: Int { self.state.withLock { $0.handles.count } }
    public var activeWatches: Int { self.state.withLock { $0.watches.count } }

    /// Retention: the host drops the log's entries up to `seq` (first_seq moves past them).
    public func dropEntries(route: String, key: String, subject: String? = nil, through seq: UInt64) {
        self.state.withLock { state in
            guard let name = state.name(route: route, key: key, subject: subject) else { return }
            state.logs[name]?.entries.removeAll { $0.seq <= seq }
            state.logs[name]?.droppedThrough = seq
        }
    }

    /// Retention deleted the log (another worker pruned it while this one's sockets followed it): watches end with
    /// no status, as the host's do.
    public func deleteLog(route: String, key: String, subject: String? = nil) {
        self.state.withLock { state in
            guard let name = state.name(route: route, key: key, subject: subject) else { return }
            state.logs[name] = nil
        }
    }

    /// The writer's instance went away (another generation, a crash): the host ends the log itself.
    /// `crashed`: its process died, and entries it appended last never reached the store: the host numbers its
    /// terminal entry 2^20 past the last stored one (a gap every reader sees).
    public func writerWentAway(route: String, key: String, subject: String? = nil, reason: String,
                               crashed: Bool = false)
    {
        self.state.withLock { state in
            guard let name = state.name(route: route, key: key, subject: subject), var log = state.logs[name],
                log.endStatus == nil
            else { return }
            log.appendTerminal(key: key, reason: reason, crashed: crashed)
            log.writer = nil
            state.logs[name] = log
        }
    }

    /// The next log_create delivers `text` to the instance as a signal to the new log before it returns (a host
    /// thread delivering a signal from another worker while the writer is still being created).
    public func signalWhileCreating(_ text: String) {
        self.state.withLock { $0.signalWhileCreating = Array(text.utf8) }
    }

    // MARK: Delivery

    /// Delivers every pending event (signals, watch entries and ends) in order until none is left; returns how
    /// many were delivered.
    @discardableResult
    public func pump() -> Int {
        var delivered = 0
        while let next = self.state.withLock({ $0.nextEvent() }) {
            next.deliver()
            delivered += 1
        }
        return delivered
    }
}
