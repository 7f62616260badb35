import CAgentHostPlugin
import Synchronization

/// One client connection of a `PluginHarness`: send it messages, read what the plugin sent back.
public final class TestConnection: @unchecked Sendable {
    // @unchecked: all state is the harness's, under its lock.
    public let handle: UInt64
    let harness: PluginHarness

    init(harness: PluginHarness, handle: UInt64) {
        self.harness = harness
        self.handle = handle
    }

    /// The client sends a text message: `on_message` now (or, while the plugin paused reading, once it resumes),
    /// then whatever fell due.
    public func send(_ text: String) { self.harness.deliver(.text(text), to: self.handle) }

    public func send(binary: [UInt8]) { self.harness.deliver(.binary(binary), to: self.handle) }

    /// Everything the plugin sent on this connection so far.
    public var received: [TestMessage] { self.harness.state.withLock { $0.connections[self.handle]?.received ?? [] } }

    /// What the plugin sent since the last call.
    public func takeReceived() -> [TestMessage] {
        self.harness.state.withLock { state in
            defer { state.connections[self.handle]?.received = [] }
            return state.connections[self.handle]?.received ?? []
        }
    }

    /// Waits (without blocking a thread) until the plugin has sent `count` messages on this connection, or closed
    /// it: for plugins that send from their own threads or tasks (async plugins). False after `seconds`.
    public func waitForMessages(_ count: Int, seconds: Double = 10) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while true {
            let (done, seen) = self.harness.state.withLock { state in
                ((state.connections[self.handle]?.received.count ?? 0) >= count
                    || state.connections[self.handle]?.closedByPlugin != nil, state.wakeups)
            }
            if done { return (self.harness.state.withLock { $0.connections[self.handle]?.received.count ?? 0 }) >= count }
            if ContinuousClock.now >= deadline { return false }
            // Woken by the plugin's next send or close (or at once if one came since the check above); a deadline
            // task wakes it otherwise.
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await withCheckedContinuation { continuation in
                        let now = self.harness.state.withLock { state -> Bool in
                            guard state.wakeups == seen else { return true }
                            state.waiters.append(continuation)
                            return false
                        }
                        if now { continuation.resume() }
                    }
                }
                group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
                await group.next()
                // The waiter may still be registered: wake every waiter so none is left behind (each re-checks).
                let waiters = self.harness.state.withLock { $0.takeWaiters() }
                for waiter in waiters { waiter.resume() }
                group.cancelAll()
            }
        }
    }

    /// The close the plugin started: (code, reason); `on_close` follows at the next `runPending()`.
    public var closedByPlugin: (code: UInt16, reason: String)? {
        self.harness.state.withLock { $0.connections[self.handle]?.closedByPlugin }
    }

    public var isOpen: Bool { self.harness.state.withLock { $0.connections[self.handle]?.open ?? false } }

    /// Whether the plugin paused reading this connection.
    public var isPaused: Bool { self.harness.state.withLock { $0.connections[self.handle]?.paused ?? false } }

    /// The client closes (or goes away, code 1006): `on_close`, then its pending events come back cancelled.
    public func close(code: UInt16 = 1000, reason: String = "") {
        self.harness.finish(self.handle, code: code, reason: reason)
    }

    /// From now on sends answer BACKPRESSURE (still recorded), as when the client stops reading.
    public func stopReading() { self.harness.state.withLock { $0.connections[self.handle]?.backpressure = true } }

    /// The client reads again: sends answer OK, and the plugin gets `on_writable`.
    public func resumeReading() {
        let address = self.harness.state.withLock { state -> UInt? in
            guard state.connections[self.handle]?.open == true else { return nil }
            state.connections[self.handle]?.backpressure = false
            return state.connections[self.handle]?.connData
        }
        guard let address, let onWritable = self.harness.descriptor.pointee.on_writable else { return }
        onWritable(self.harness.instancePointer, UnsafeMutableRawPointer(bitPattern: address), self.handle)
        self.harness.runPending()
    }
}
