import CAgentHostPlugin
import Synchronization

/// The writers' signal handlers, by plugin instance and log handle. A LOG_SIGNAL names its log by the writer's
/// handle (`id`) and comes with no connection, so this table, not a retained pointer, finds the handler: a signal
/// racing with `RunLog.release()` finds nothing and is dropped, and no box can be freed twice or used after free.
enum RunLogSignals {
    typealias Handler = @Sendable (UnsafeBufferPointer<UInt8>) -> Void

    struct Key: Hashable {
        let context: UInt
        let handle: agenthost_log_t
        init(_ context: OpaquePointer?, _ handle: agenthost_log_t) {
            self.context = context.map { UInt(bitPattern: UnsafeRawPointer($0)) } ?? 0
            self.handle = handle
        }
    }

    private static let handlers = Mutex<[Key: Handler]>([:])

    static func register(_ handler: @escaping Handler, context: OpaquePointer?, handle: agenthost_log_t) {
        self.handlers.withLock { $0[Key(context, handle)] = handler }
    }

    static func unregister(context: OpaquePointer?, handle: agenthost_log_t) {
        _ = self.handlers.withLock { $0.removeValue(forKey: Key(context, handle)) }
    }

    /// Calls the handler of `handle`, if it is still registered. Outside the lock: a handler may release logs.
    static func deliver(context: OpaquePointer?, handle: agenthost_log_t, bytes: UnsafeBufferPointer<UInt8>) {
        guard let handler = self.handlers.withLock({ $0[Key(context, handle)] }) else { return }
        handler(bytes)
    }

    /// Handlers still registered (what tests check is freed).
    static var count: Int { self.handlers.withLock { $0.count } }
}
