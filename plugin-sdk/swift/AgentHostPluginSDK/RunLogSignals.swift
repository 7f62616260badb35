import CAgentHostPlugin
import Synchronization

/// The writers' signal handlers, by plugin instance and registration token. A LOG_SIGNAL comes with no connection;
/// it names its log by the writer's handle (`id`) and carries the `signal_data` given to log_create, which is this
/// table's token (a number, never dereferenced). So the handler is registered before log_create is called (a
/// signal the host delivers on another thread before log_create returns finds it), and a signal racing with
/// `RunLog.release()` or the instance's drop finds nothing and is dropped: no box can be freed twice or used after
/// free.
enum RunLogSignals {
    typealias Handler = @Sendable (UnsafeBufferPointer<UInt8>) -> Void

    struct Key: Hashable {
        let context: UInt
        let token: UInt
        init(_ context: OpaquePointer?, _ token: UInt) {
            self.context = UInt(context: context)
            self.token = token
        }
    }

    struct HandleKey: Hashable {
        let context: UInt
        let handle: agenthost_log_t
    }

    struct Table {
        var handlers: [Key: Handler] = [:]
        /// The token of each writer handle, for a host that does not pass `signal_data` back.
        var tokens: [HandleKey: UInt] = [:]
        /// The handle bound to each token: a release removes its entry without scanning every live run's.
        var handles: [Key: agenthost_log_t] = [:]
    }

    private static let table = Mutex(Table())
    /// Tokens are never reused (a late signal cannot reach a later log's handler); 0 is never one.
    private static let counter = Atomic<UInt>(0)

    /// Registers `handler` before its log exists. Returns the token to pass as log_create's `signal_data`.
    static func reserve(_ handler: @escaping Handler, context: OpaquePointer?) -> UInt {
        let token = self.counter.add(1, ordering: .relaxed).newValue
        self.table.withLock { $0.handlers[Key(context, token)] = handler }
        return token
    }

    /// log_create returned `handle` for the registration `token`.
    static func bind(token: UInt, context: OpaquePointer?, handle: agenthost_log_t) {
        self.table.withLock { table in
            guard table.handlers[Key(context, token)] != nil else { return }  // the instance was dropped meanwhile
            table.tokens[HandleKey(context: UInt(context: context), handle: handle)] = token
            table.handles[Key(context, token)] = handle
        }
    }

    /// Removes the handler of `token` (log_create failed, or the handle was released).
    static func unregister(token: UInt, context: OpaquePointer?) {
        self.table.withLock { table in
            table.handlers[Key(context, token)] = nil
            if let handle = table.handles.removeValue(forKey: Key(context, token)) {
                table.tokens[HandleKey(context: UInt(context: context), handle: handle)] = nil
            }
        }
    }

    /// The instance is being dropped: none of its handlers may be called again.
    static func unregisterAll(context: OpaquePointer?) {
        let contextKey = UInt(context: context)
        self.table.withLock { table in
            table.handlers = table.handlers.filter { $0.key.context != contextKey }
            table.tokens = table.tokens.filter { $0.key.context != contextKey }
            table.handles = table.handles.filter { $0.key.context != contextKey }
        }
    }

    /// Calls the handler of the signal's registration (its `signal_data`, else its writer `handle`), if it is still
    /// registered. Outside the lock: a handler may release logs.
    static func deliver(context: OpaquePointer?, handle: agenthost_log_t, signalData: UnsafeMutableRawPointer?,
                        bytes: UnsafeBufferPointer<UInt8>)
    {
        let handler = self.table.withLock { table -> Handler? in
            let token = signalData.map { UInt(bitPattern: $0) }
                ?? table.tokens[HandleKey(context: UInt(context: context), handle: handle)]
            return token.flatMap { table.handlers[Key(context, $0)] }
        }
        handler?(bytes)
    }

    /// Handlers still registered (what tests check is freed).
    static var count: Int { self.table.withLock { $0.handlers.count } }

    /// Handlers still registered for one instance.
    static func count(context: OpaquePointer?) -> Int {
        let contextKey = UInt(context: context)
        return self.table.withLock { $0.handlers.keys.filter { $0.context == contextKey }.count }
    }
}

extension UInt {
    fileprivate init(context: OpaquePointer?) {
        self = context.map { UInt(bitPattern: UnsafeRawPointer($0)) } ?? 0
    }
}
