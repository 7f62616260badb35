import Foundation
import NIOCore

/// The run log's own thread: runs the write-behind cycle every `interval`, and at once when a flush is awaited.
/// The store's blocking calls happen here, never on an event loop or Swift's cooperative pool.
final class WriteBehindThread: @unchecked Sendable {
    // @unchecked: every mutable property is guarded by `condition`.
    private let interval: TimeAmount
    private let condition = NSCondition()
    private var wake = false
    private var stopping = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var running = false
    private var stopped: CheckedContinuation<Void, Never>?

    init(interval: TimeAmount) {
        self.interval = interval
    }

    func start(_ cycle: @escaping @Sendable () -> Void) {
        self.condition.lock()
        self.running = true
        self.condition.unlock()
        let thread = Thread { self.loop(cycle) }
        thread.name = "agenthost-runlog"
        thread.start()
    }

    private func loop(_ cycle: () -> Void) {
        while true {
            self.condition.lock()
            if !self.wake && !self.stopping {
                _ = self.condition.wait(until: Date(timeIntervalSinceNow: Double(self.interval.nanoseconds) / 1e9))
            }
            self.wake = false
            let waiters = self.waiters
            self.waiters = []
            let stopping = self.stopping
            self.condition.unlock()
            cycle()
            for waiter in waiters { waiter.resume() }
            if stopping { break }
        }
        self.condition.lock()
        self.running = false
        let stopped = self.stopped
        let late = self.waiters
        self.waiters = []
        self.condition.unlock()
        for waiter in late { waiter.resume() }
        stopped?.resume()
    }

    /// Resumes after a cycle that started after this call.
    func flush() async {
        await withCheckedContinuation { continuation in
            self.condition.lock()
            guard self.running else {
                self.condition.unlock()
                continuation.resume()
                return
            }
            self.waiters.append(continuation)
            self.wake = true
            self.condition.signal()
            self.condition.unlock()
        }
    }

    /// Runs a last cycle and ends the thread.
    func stop() async {
        await withCheckedContinuation { continuation in
            self.condition.lock()
            guard self.running, self.stopped == nil else {
                self.condition.unlock()
                continuation.resume()
                return
            }
            self.stopped = continuation
            self.stopping = true
            self.condition.signal()
            self.condition.unlock()
        }
    }
}
