import Synchronization

/// Hands each event loop its `CallbackSlot` and each endpoint its name index in this process's
/// `CallbackSlotRegion`: a private one, or the one a supervisor shares with this worker (`adopt`).
public final class CallbackWatch: Sendable {
    public static let shared = CallbackWatch()

    private struct State {
        var region = CallbackSlotRegion.privateRegion()
        /// Where loops past the region's slots record their callbacks: nobody watches it. Sharing one watched slot
        /// would be wrong, not just blind: when two loops' callbacks overlap, the one leaving last restores the
        /// other's mark, and the slot then shows a callback "busy" since long ago (a false watchdog kill).
        let overflow = CallbackSlotRegion.privateRegion()
        var loops: [ObjectIdentifier: Int] = [:]
        var names: [String: Int] = [:]
    }

    private let state = Mutex(State())

    /// A watch of its own (tests); the server uses `shared`.
    public init() {}

    /// Uses `region` from now on (a worker does this before it serves anything).
    public func adopt(_ region: CallbackSlotRegion) {
        self.state.withLock { state in
            state.region = region
            state.loops = [:]
            state.names = [:]
        }
    }

    /// The slot of `loop` and the tag base of `endpoint` (OR a `WatchedCallback` into it). Called once per
    /// connection. Loops past `slotCount` get an unwatched slot (no watchdog and no crash cause for them); endpoint
    /// names past the table's capacity share the last entry.
    public func slot(for loop: ObjectIdentifier, endpoint: String) -> (CallbackSlot, UInt64) {
        self.state.withLock { state in
            let loopIndex: Int
            if let known = state.loops[loop] {
                loopIndex = known
            } else {
                loopIndex = state.loops.count
                state.loops[loop] = loopIndex
            }
            let nameIndex: Int
            if let known = state.names[endpoint] {
                nameIndex = known
            } else {
                nameIndex = min(state.names.count + 1, CallbackSlotRegion.nameCapacity - 1)
                state.names[endpoint] = nameIndex
                let shared = nameIndex == CallbackSlotRegion.nameCapacity - 1
                state.region.writeName(shared ? "(one of several plugins)" : endpoint, at: nameIndex)
            }
            let slot = loopIndex < CallbackSlotRegion.slotCount
                ? state.region.slot(loopIndex) : state.overflow.slot(0)
            return (slot, UInt64(nameIndex) << 8)
        }
    }
}
