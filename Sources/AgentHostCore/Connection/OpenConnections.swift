import Synchronization

/// The WebSocket connections one server has open: what its shutdown (and, later, a drain) must close.
///
/// Kept apart from `ConnectionRegistry`, which names connections process-wide for plugins: two servers in one
/// process (as in the tests) share the registry but must each close only their own connections.
public final class OpenConnections: Sendable {
    private let connections = Mutex<[UInt64: WebSocketConnection]>([:])
    private let shuttingDown = Atomic<Bool>(false)
    /// Signalled when a connection goes: a shutdown waits on it for the last one.
    let removed = StateChangeSignal()

    public init() {}

    /// Set when the server starts shutting down: a connection whose upgrade completes after that is closed with
    /// 1001 as soon as it opens, like the others.
    var isShuttingDown: Bool { self.shuttingDown.load(ordering: .relaxed) }

    func beginShutdown() { self.shuttingDown.store(true, ordering: .relaxed) }

    public var count: Int { self.connections.withLock { $0.count } }

    public var all: [WebSocketConnection] { self.connections.withLock { Array($0.values) } }

    func insert(_ connection: WebSocketConnection) {
        self.connections.withLock { $0[connection.handle] = connection }
    }

    func remove(_ connection: WebSocketConnection) {
        _ = self.connections.withLock { $0.removeValue(forKey: connection.handle) }
        self.removed.signal()
    }
}
