import CAgentHostPlugin
import Synchronization

/// A handle on one of the host's run logs (ABI 1.1, see RUN LOG in agenthost_plugin.h): an append-only sequence of
/// entries the host keeps for the plugin, outliving sockets, plugin generations and host restarts.
///
/// The handle belongs to the plugin instance that created or opened it: it stays valid across connections until
/// `release()` (or until the instance is dropped, when the host releases it). Release it exactly once; the SDK
/// makes a second call a no-op. Every call is safe from any thread.
public final class RunLog: Sendable {
    public let handle: agenthost_log_t
    /// Whether this handle is the log's writer (from `create`): only the writer appends and ends.
    public let isWriter: Bool
    let host: PluginHost
    /// The writer's signal handler registration (`RunLogSignals`), if it has one.
    private let signalToken: UInt?
    private let released = Atomic<Bool>(false)

    init(handle: agenthost_log_t, isWriter: Bool, host: PluginHost, signalToken: UInt? = nil) {
        self.handle = handle
        self.isWriter = isWriter
        self.host = host
        self.signalToken = signalToken
    }

    /// Creates the log `key` (1-128 bytes) on the route of `connection`, owned by its identity, or, when the
    /// connection is anonymous, by whoever presents `secret` (16-256 bytes; ignored by the host for identified
    /// connections). `onSignal` receives what `signal(_:)` sends to this log from any handle, on a host thread,
    /// one at a time, until `release()` or the instance's drop. It is registered before the host is asked, so
    /// a signal delivered before this returns reaches it too.
    /// - Throws: `.exists`, `.closed`, `.badArgument`, `.unavailable` (also when the host has no run log).
    public static func create(on connection: Connection, key: String, secret: String? = nil,
                              onSignal: (@Sendable (UnsafeBufferPointer<UInt8>) -> Void)? = nil)
        throws(RunLogError) -> RunLog
    {
        let host = connection.host
        guard host.hasRunLog, let create = host.api.pointee.log_create else { throw RunLogError(.unavailable, "create") }
        // Registered before the log exists: the host may deliver a signal on another thread before log_create
        // returns. The handler is found by the token passed as `signal_data` (a number, never a pointer of ours).
        let token = onSignal.map { RunLogSignals.reserve($0, context: host.context) }
        var handle: agenthost_log_t = 0
        let status = Self.withKeyAndSecret(key, secret) { key, secret in
            create(connection.handle, key.baseAddress, key.count, secret.baseAddress, secret.count,
                   token.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }, &handle)
        }
        guard status == .ok else {
            if let token { RunLogSignals.unregister(token: token, context: host.context) }
            throw RunLogError(status, "create")
        }
        if let token { RunLogSignals.bind(token: token, context: host.context, handle: handle) }
        return RunLog(handle: handle, isWriter: true, host: host, signalToken: token)
    }

    /// Opens an existing log (live or ended, written by any generation or worker) for watching and signalling.
    /// - Throws: `.notFound` (no such log, or not this identity's / secret's), `.closed`, `.badArgument`,
    ///   `.unavailable`.
    public static func open(on connection: Connection, key: String, secret: String? = nil) throws(RunLogError) -> RunLog {
        let host = connection.host
        guard host.hasRunLog, let open = host.api.pointee.log_open else { throw RunLogError(.unavailable, "open") }
        var handle: agenthost_log_t = 0
        let status = Self.withKeyAndSecret(key, secret) { key, secret in
            open(connection.handle, key.baseAddress, key.count, secret.baseAddress, secret.count, &handle)
        }
        guard status == .ok else { throw RunLogError(status, "open") }
        return RunLog(handle: handle, isWriter: false, host: host)
    }

    /// Appends one entry (copied before this returns; never waits for the store). Returns its sequence number.
    /// - Throws: `.closed` (the log has ended), `.badArgument` (not the writer, or larger than the host's limit).
    @discardableResult
    public func append(_ bytes: UnsafeBufferPointer<UInt8>) throws(RunLogError) -> UInt64 {
        var seq: UInt64 = 0
        let status = HostStatus(self.host.api.pointee.log_append!(self.handle, bytes.baseAddress, bytes.count, &seq))
        guard status == .ok else { throw RunLogError(status, "append") }
        return seq
    }

    @discardableResult
    public func append(text: String) throws(RunLogError) -> UInt64 {
        var text = text
        // withUTF8 rethrows untyped: carry the typed error out in a Result.
        return try text.withUTF8 { bytes in Result { () throws(RunLogError) in try self.append(bytes) } }.get()
    }

    /// Ends the log with `status` (1-31 bytes: "complete", "cancelled", "error", "timeout", ...). Watchers get
    /// their end once they have every entry.
    public func end(status: String) throws(RunLogError) {
        var status = status
        let result = status.withUTF8 { HostStatus(self.host.api.pointee.log_end!(self.handle, $0.baseAddress, $0.count)) }
        guard result == .ok else { throw RunLogError(result, "end") }
    }

    /// What the host knows about the log now.
    public func info() throws(RunLogError) -> RunLogInfo {
        var raw = agenthost_log_info_v1()
        raw.struct_size = UInt32(MemoryLayout<agenthost_log_info_v1>.size)
        let status = HostStatus(self.host.api.pointee.log_info!(self.handle, &raw))
        guard status == .ok else { throw RunLogError(status, "info") }
        return RunLogInfo(raw)
    }

    /// Delivers the entries after `afterSeq` to `watcher` on the event loop of `connection`, in order, each once,
    /// then one `runLogEnded`. The host paces delivery by the connection's outbound queue. `watcher` is kept
    /// (retained) until its `runLogEnded`, which comes exactly once for a watch that started, also when it is
    /// cancelled (`unwatch`, `release`, the connection closed).
    /// - Returns: the watch, for `unwatch`.
    @discardableResult
    public func watch(on connection: Connection, after afterSeq: UInt64, _ watcher: any RunLogWatcher)
        throws(RunLogError) -> RunLogWatch
    {
        let box = Unmanaged.passRetained(WatchBox(watcher))
        var id: UInt64 = 0
        let status = HostStatus(self.host.api.pointee.log_watch!(connection.handle, self.handle, afterSeq, box.toOpaque(), &id))
        guard status == .ok else {
            box.release()  // no LOG_END will come for a watch that did not start
            throw RunLogError(status, "watch")
        }
        return RunLogWatch(id: id, connection: connection)
    }

    /// Sends `bytes` (at most 64 KiB, copied) to the log's writer, wherever it runs.
    /// - Throws: `.notFound` when the log has ended or has no writer now.
    public func signal(_ bytes: UnsafeBufferPointer<UInt8>) throws(RunLogError) {
        // A handle released on another thread (a stream that ended while a sweep renewed its lease) is not used.
        guard !self.released.load(ordering: .acquiring) else { throw RunLogError(.badArgument, "signal") }
        let status = HostStatus(self.host.api.pointee.log_signal!(self.handle, bytes.baseAddress, bytes.count))
        guard status == .ok else { throw RunLogError(status, "signal") }
    }

    public func signal(text: String) throws(RunLogError) {
        var text = text
        try text.withUTF8 { bytes in Result { () throws(RunLogError) in try self.signal(bytes) } }.get()
    }

    /// Gives the handle back: its watches are cancelled, and releasing a live log's writer ends the log as a
    /// writer that went away does (the host appends its terminal entry). Later calls do nothing.
    public func release() {
        guard !self.released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let token = self.signalToken { RunLogSignals.unregister(token: token, context: self.host.context) }
        _ = self.host.api.pointee.log_release?(self.handle)
    }

    private static func withKeyAndSecret(_ key: String, _ secret: String?,
                                         _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> agenthost_status_t)
        -> HostStatus
    {
        var key = key
        var secret = secret ?? ""
        return HostStatus(key.withUTF8 { key in secret.withUTF8 { secret in body(key, secret) } })
    }
}
