import AgentHostCore
import NIOCore
import Synchronization

/// The posts and timers of one plugin instance (ABI 1.2 `instance_post`, `instance_timer_start`,
/// `instance_timer_cancel`): events not tied to a connection, fired on the instance's home event loop and delivered
/// through `PluginEndpoint.deliverInstanceEvent` (on_event with conn 0), one at a time per instance.
///
/// Every event the plugin was promised stays in `pending` until it is delivered, fired or cancelled: the drop takes
/// what is left and hands it back cancelled before `instance_drop`, so nothing the plugin allocated for an event is
/// lost, whichever of a firing timer and the drop comes first.
final class InstanceEvents: Sendable {
    struct Pending: Sendable {
        var kind: DeferredEvent.Kind
        /// The id the plugin sees: its own for a post, the timer id for a timer.
        var id: UInt64
        var context: UInt
        var task: Scheduled<Void>?
        var cancelled = false

        var event: DeferredEvent { DeferredEvent(kind: self.kind, id: self.id, context: self.context, cancelled: self.cancelled) }
    }

    private struct State {
        /// By internal key (timer ids are keys; a post's key is private, its id the plugin's).
        var pending: [UInt64: Pending] = [:]
        var nextKey: UInt64 = 1
        /// Where events go once instance_create returned; until then fired keys wait in `early`.
        var endpoint: PluginEndpoint?
        var early: [UInt64] = []
        var closed = false
    }

    /// Why a post or timer was not accepted.
    enum Refusal: Error {
        /// The instance is being dropped (CLOSED).
        case closed
        /// `maxPending` events wait already (UNAVAILABLE): a plugin posting in a loop must not grow the host's
        /// memory, nor bury a drain's work on the loop, without end.
        case full
    }

    static let maxPending = 65_536

    let loop: any EventLoop
    private let state = Mutex(State())

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func post(id: UInt64, context: UInt) -> Result<Void, Refusal> {
        let key = self.state.withLock { state -> Result<UInt64, Refusal> in
            guard !state.closed else { return .failure(.closed) }
            guard state.pending.count < Self.maxPending else { return .failure(.full) }
            let key = state.nextKey
            state.nextKey += 1
            state.pending[key] = Pending(kind: .posted, id: id, context: context)
            return .success(key)
        }
        return key.map { key in self.loop.execute { self.fire(key) } }
    }

    /// The timer id.
    func startTimer(after delay: TimeAmount, context: UInt) -> Result<UInt64, Refusal> {
        self.state.withLock { state -> Result<UInt64, Refusal> in
            guard !state.closed else { return .failure(.closed) }
            guard state.pending.count < Self.maxPending else { return .failure(.full) }
            let key = state.nextKey
            state.nextKey += 1
            let task = self.loop.scheduleTask(in: delay) { self.fire(key) }
            state.pending[key] = Pending(kind: .timer, id: key, context: context, task: task)
            return .success(key)
        }
    }

    /// Whether the timer was pending (it is then delivered once, cancelled).
    func cancelTimer(_ id: UInt64) -> Bool {
        let cancelled = self.state.withLock { state -> Bool in
            guard !state.closed, var timer = state.pending[id], timer.kind == .timer, !timer.cancelled else { return false }
            timer.task?.cancel()
            timer.task = nil
            timer.cancelled = true
            state.pending[id] = timer
            return true
        }
        if cancelled { self.loop.execute { self.fire(id) } }
        return cancelled
    }

    /// instance_create returned: events fired meanwhile go out now, in the order they fired.
    func attach(_ endpoint: PluginEndpoint) {
        self.state.withLock { $0.endpoint = endpoint }
        self.loop.execute { self.deliverEarly() }
    }

    /// On the loop: the events that fired before attach, oldest first. Events firing meanwhile queue behind them
    /// (see `fire`), so order holds.
    private func deliverEarly() {
        while true {
            let next = self.state.withLock { state -> (PluginEndpoint, UInt64)? in
                guard let endpoint = state.endpoint, !state.early.isEmpty else { return nil }
                return (endpoint, state.early.removeFirst())
            }
            guard let (endpoint, key) = next else { return }
            endpoint.deliverInstanceEvent(key: key, from: self)
        }
    }

    /// Takes the event for `key` if it is still pending (the endpoint calls this under its call gate).
    func take(_ key: UInt64) -> DeferredEvent? {
        self.state.withLock { $0.pending.removeValue(forKey: key)?.event }
    }

    /// The instance is being dropped (or was never created): no more events; what was pending, to hand back
    /// cancelled.
    func close() -> [DeferredEvent] {
        self.state.withLock { state in
            state.closed = true
            state.endpoint = nil
            let pending = state.pending.keys.sorted().compactMap { state.pending[$0] }
            state.pending = [:]
            return pending.map { pending in
                pending.task?.cancel()
                var event = pending.event
                event.cancelled = true
                return event
            }
        }
    }

    private func fire(_ key: UInt64) {
        let endpoint = self.state.withLock { state -> PluginEndpoint? in
            guard let endpoint = state.endpoint, state.early.isEmpty else {
                if !state.closed { state.early.append(key) }
                return nil
            }
            return endpoint
        }
        endpoint?.deliverInstanceEvent(key: key, from: self)
    }
}
