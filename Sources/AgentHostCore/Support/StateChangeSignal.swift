import Synchronization

/// Lets a task wait until some state (counted elsewhere, under its own lock) satisfies a condition, woken by the
/// code that changes the state instead of polling it.
///
/// The waiter re-checks its condition after every `signal()`, so one signal type serves any condition on the state
/// it guards. A signal that comes between the waiter's check and its suspension is not lost: each wait remembers
/// the signal count it checked against and returns at once if it moved. Written here because neither NIO nor the
/// standard library has a condition variable for async code (`NIOLockedValueBox` and `Mutex` block threads).
public final class StateChangeSignal: Sendable {
    private struct State {
        var signals: UInt64 = 0
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waiters cancelled (their deadline passed) before they suspended: they must not suspend.
        var cancelledEarly: Set<UInt64> = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes every task waiting now; each re-checks its condition.
    public func signal() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.signals &+= 1
            guard !state.waiters.isEmpty else { return [] }
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll(keepingCapacity: true)
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns true once `condition` holds (checked now and after every signal), or false when `deadline` passes
    /// (or the task is cancelled) first.
    public func wait(until deadline: ContinuousClock.Instant, for condition: () -> Bool) async -> Bool {
        while true {
            let seen = self.state.withLock { $0.signals }
            if condition() { return true }
            if Task.isCancelled || ContinuousClock.now >= deadline { return false }
            await self.nextSignal(after: seen, deadline: deadline)
        }
    }

    /// Waits until `condition` holds, however long that takes.
    public func wait(for condition: () -> Bool) async {
        while true {
            let seen = self.state.withLock { $0.signals }
            if condition() || Task.isCancelled { return }
            await self.nextSignal(after: seen, deadline: nil)
        }
    }

    /// Suspends until a signal after the `seen`-th, or the deadline.
    private func nextSignal(after seen: UInt64, deadline: ContinuousClock.Instant?) async {
        let id = self.state.withLock { state -> UInt64 in
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.suspend(id: id, after: seen) }
            if let deadline {
                group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            }
            await group.next()
            group.cancelAll()
        }
        // Both tasks are done: no cancellation handler can still name this waiter.
        self.state.withLock { _ = $0.cancelledEarly.remove(id) }
    }

    private func suspend(id: UInt64, after seen: UInt64) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.state.withLock { state -> Bool in
                    if state.signals != seen || state.cancelledEarly.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.cancelledEarly.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }
}
