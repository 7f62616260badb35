import Synchronization

/// Names every open WebSocket connection by a 64-bit handle (slot and generation), so that code outside the
/// event loop, above all a plugin across the C ABI, can refer to a connection without holding a pointer to it.
///
/// A handle used after its connection closed, or after its slot was given to a new connection, finds a different
/// generation and is refused: use after close is an error, never a crash. A slot is reused only when its
/// connection is closed and no retain is outstanding.
public final class ConnectionRegistry: Sendable {
    private struct Slot {
        var generation: UInt32 = 0
        var connection: WebSocketConnection?
        var retains: Int = 0
        var open: Bool { self.connection != nil }
    }

    private struct State {
        var slots: [Slot] = []
        var free: [UInt32] = []
        var openCount = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Number of open connections.
    public var count: Int { self.state.withLock { $0.openCount } }

    /// Gives `connection` a handle. Handles are never 0.
    func register(_ connection: WebSocketConnection) -> UInt64 {
        self.state.withLock { state in
            let index: UInt32
            if let reused = state.free.popLast() {
                index = reused
            } else {
                index = UInt32(state.slots.count)
                state.slots.append(Slot())
            }
            state.slots[Int(index)].generation &+= 1
            if state.slots[Int(index)].generation == 0 { state.slots[Int(index)].generation = 1 }
            state.slots[Int(index)].connection = connection
            state.openCount += 1
            return Self.handle(index: index, generation: state.slots[Int(index)].generation)
        }
    }

    /// The open connection named by `handle`, or nil if it is closed or stale.
    public func lookup(_ handle: UInt64) -> WebSocketConnection? {
        let (index, generation) = Self.split(handle)
        return self.state.withLock { state in
            guard index < state.slots.count, state.slots[index].generation == generation else { return nil }
            return state.slots[index].connection
        }
    }

    /// The connection closed: its handle stops resolving. The slot is recycled once no retain is left.
    func unregister(_ handle: UInt64) {
        let (index, generation) = Self.split(handle)
        self.state.withLock { state in
            guard index < state.slots.count, state.slots[index].generation == generation,
                state.slots[index].open
            else { return }
            state.slots[index].connection = nil
            state.openCount -= 1
            if state.slots[index].retains == 0 { state.free.append(UInt32(index)) }
        }
    }

    /// Keeps the slot of an open connection reserved until `release`. False if the handle is closed or stale.
    public func retain(_ handle: UInt64) -> Bool {
        let (index, generation) = Self.split(handle)
        return self.state.withLock { state in
            guard index < state.slots.count, state.slots[index].generation == generation,
                state.slots[index].open
            else { return false }
            state.slots[index].retains += 1
            return true
        }
    }

    /// Gives back one retain. False if the handle holds none.
    public func release(_ handle: UInt64) -> Bool {
        let (index, generation) = Self.split(handle)
        return self.state.withLock { state in
            guard index < state.slots.count, state.slots[index].generation == generation,
                state.slots[index].retains > 0
            else { return false }
            state.slots[index].retains -= 1
            if state.slots[index].retains == 0 && !state.slots[index].open { state.free.append(UInt32(index)) }
            return true
        }
    }

    private static func handle(index: UInt32, generation: UInt32) -> UInt64 {
        (UInt64(generation) << 32) | UInt64(index)
    }

    private static func split(_ handle: UInt64) -> (index: Int, generation: UInt32) {
        (Int(UInt32(truncatingIfNeeded: handle)), UInt32(truncatingIfNeeded: handle >> 32))
    }
}
