import CAgentHostPlugin

/// The result of a host call.
public enum HostStatus: Sendable, Equatable {
    case ok
    /// Queued, but slow down until `ConnectionHandler.didBecomeWritable()`.
    case backpressure
    case closed
    case badArgument
    /// (1.1) Run log: no such log here, or it is not the caller's (the two are never told apart).
    case notFound
    /// (1.1) `RunLog.create`: a log with this key already exists on the route.
    case exists
    /// (1.1) Run log: the host cannot serve the call now (its store cannot be read, it is shutting down), or the
    /// host is older than ABI 1.1 and has no run log at all.
    case unavailable
    case other(Int32)

    init(_ raw: agenthost_status_t) {
        switch raw {
        case agenthost_status_t(AGENTHOST_OK): self = .ok
        case agenthost_status_t(AGENTHOST_BACKPRESSURE): self = .backpressure
        case agenthost_status_t(AGENTHOST_CLOSED): self = .closed
        case agenthost_status_t(AGENTHOST_BAD_ARGUMENT): self = .badArgument
        case agenthost_status_t(AGENTHOST_NOT_FOUND): self = .notFound
        case agenthost_status_t(AGENTHOST_EXISTS): self = .exists
        case agenthost_status_t(AGENTHOST_UNAVAILABLE): self = .unavailable
        default: self = .other(raw)
        }
    }
}

/// A connection as a plugin sees it: a generation-checked handle plus the host's function table. A value type,
/// safe to copy and to use from any thread; after close every call returns `.closed`.
public struct Connection: Sendable, Hashable {
    public let handle: agenthost_conn_t
    let host: PluginHost

    /// The host as this connection's plugin instance sees it (for `RunLog` and instance-level logging).
    public var pluginHost: PluginHost { self.host }

    public static func == (lhs: Connection, rhs: Connection) -> Bool { lhs.handle == rhs.handle }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.handle) }

    @discardableResult
    public func send(text: String) -> HostStatus {
        var text = text
        return text.withUTF8 { self.send(kind: AGENTHOST_MESSAGE_TEXT, $0) }
    }

    @discardableResult
    public func send(binary: some Collection<UInt8>) -> HostStatus {
        if let status = binary.withContiguousStorageIfAvailable({ self.send(kind: AGENTHOST_MESSAGE_BINARY, $0) }) {
            return status
        }
        return Array(binary).withUnsafeBufferPointer { self.send(kind: AGENTHOST_MESSAGE_BINARY, $0) }
    }

    /// Sends text that is already UTF-8 bytes (a run log entry, say) without making a `String` of it. The host
    /// checks the bytes and answers `.badArgument` if they are not UTF-8.
    @discardableResult
    public func send(utf8Text bytes: UnsafeBufferPointer<UInt8>) -> HostStatus {
        self.send(kind: AGENTHOST_MESSAGE_TEXT, bytes)
    }

    private func send(kind: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> HostStatus {
        HostStatus(self.host.api.pointee.send(self.handle, agenthost_message_kind_t(kind), bytes.baseAddress,
                                              bytes.count))
    }

    /// Starts the close handshake. `reason` is at most 123 bytes of UTF-8.
    @discardableResult
    public func close(code: UInt16 = 1000, reason: String = "") -> HostStatus {
        var reason = reason
        return reason.withUTF8 { HostStatus(self.host.api.pointee.close(self.handle, code, $0.baseAddress, $0.count)) }
    }

    /// Runs `body` on the connection's event loop after `milliseconds`, unless the connection closes first.
    /// Returns the timer id for `cancelTimer`, or nil if the connection is closed.
    @discardableResult
    public func schedule(afterMilliseconds milliseconds: UInt64, _ body: @escaping () -> Void) -> UInt64? {
        let box = Unmanaged.passRetained(DeferredWork(body))
        var id: UInt64 = 0
        let status = self.host.api.pointee.timer_start(self.handle, milliseconds, box.toOpaque(), &id)
        guard status == agenthost_status_t(AGENTHOST_OK) else {
            box.release()
            return nil
        }
        return id
    }

    /// Cancels a scheduled timer. Its closure is released when the host hands it back (cancelled) or never runs.
    @discardableResult
    public func cancelTimer(_ id: UInt64) -> HostStatus {
        HostStatus(self.host.api.pointee.timer_cancel(self.handle, id))
    }

    /// Runs `body` on the connection's event loop, after the current callback. Callable from any thread: this is
    /// how work done on your own threads gets back to the connection. False if the connection is closed.
    @discardableResult
    public func post(_ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(DeferredWork(body))
        guard self.host.api.pointee.post(self.handle, 0, box.toOpaque()) == agenthost_status_t(AGENTHOST_OK) else {
            box.release()
            return false
        }
        return true
    }

    /// (1.2) Stops delivering this client's messages, and reading its socket, until `resumeReading()`: its
    /// further sends wait in TCP buffers (inbound flow control). Called from this connection's handler, no message
    /// arrives after it returns; from another thread, it acts on the event loop shortly after. While paused the
    /// host does not ping the client or time it out. `.unavailable` on a host older than 1.2.
    @discardableResult
    public func pauseReading() -> HostStatus {
        guard self.host.has(\.pause_reading) else { return .unavailable }
        return HostStatus(self.host.api.pointee.pause_reading(self.handle))
    }

    /// (1.2) Delivers the messages held while paused, in order, and reads the socket again.
    @discardableResult
    public func resumeReading() -> HostStatus {
        guard self.host.has(\.resume_reading) else { return .unavailable }
        return HostStatus(self.host.api.pointee.resume_reading(self.handle))
    }

    /// Writes a log line attributed to this plugin and connection.
    public func log(_ level: LogLevel, _ message: String) {
        self.host.log(level, message, connection: self.handle)
    }
}

/// A closure waiting for a timer or a post; travels through the C ABI as the event's `data` pointer.
final class DeferredWork {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
