import Dispatch
import Synchronization

/// Keeps calls into a plugin instance made outside its connections' callbacks (run log signals, instance events,
/// the drain notice, cancelled events after on_close) from overlapping `instance_drop`.
///
/// Calls do not exclude one another here: a slow `on_drain` on a host thread must not hold up instance events on
/// an event loop (nor deadlock with an event it posted and waits for). Each call counts itself in; `close` stops
/// new calls and waits, on the dropping thread (NIO's blocking pool), until those in flight have returned.
final class InstanceCallGate: Sendable {
    private struct State {
        var inFlight = 0
        var closed = false
        /// The closer waiting for the last call in flight.
        var closer: DispatchSemaphore?
    }

    private let state = Mutex(State())

    /// Runs `body` unless the instance is being dropped; returns whether it ran.
    @discardableResult
    func run(_ body: () -> Void) -> Bool {
        let entered = self.state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.inFlight += 1
            return true
        }
        guard entered else { return false }
        defer {
            let closer = self.state.withLock { state -> DispatchSemaphore? in
                state.inFlight -= 1
                return state.inFlight == 0 ? state.closer : nil
            }
            closer?.signal()
        }
        body()
        return true
    }

    /// Refuses every later call and waits for those in flight; false if it was closed already.
    @discardableResult
    func close() -> Bool {
        let (wasOpen, wait) = self.state.withLock { state -> (Bool, DispatchSemaphore?) in
            let wasOpen = !state.closed
            state.closed = true
            guard state.inFlight > 0 else { return (wasOpen, nil) }
            let semaphore = state.closer ?? DispatchSemaphore(value: 0)
            state.closer = semaphore
            return (wasOpen, semaphore)
        }
        wait?.wait()
        return wasOpen
    }
}
