import Dispatch
import Foundation
import NIOCore

/// The run log's own thread: runs the write-behind cycle every `interval` while there is work (live logs), every
/// `idleInterval` when the last cycle found none, and at once when a flush is awaited. The store's blocking calls
/// happen here, never on an event loop or Swift's cooperative pool.
final class WriteBehindThread: @unchecked Sendable {
    // @unchecked: every mutable property is guarded by `condition`.
    private let interval: TimeAmount
    private let idleInterval: TimeAmount
    private let condition = NSCondition()
    private var wakeRequested = false
    /// The last cycle found no work: the thread waits `idleInterval` unless told of new work (`busy()`).
    private var idle = false
    /// `busy()` was called while a cycle ran: that cycle's "no work" may predate the new work.
    private var workArrived = false
    private var stopping = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var running = false
    private var stopped: CheckedContinuation<Void, Never>?

    init(interval: TimeAmount, idleInterval: TimeAmount) {
        self.interval = interval
        self.idleInterval = max(interval, idleInterval)
    }

    /// `cycle` returns whether it found work (then the next cycle comes after `interval`, else `idleInterval`).
    func start(_ cycle: @escaping @Sendable () -> Bool) {
        self.condition.lock()
        self.running = true
        self.condition.unlock()
        let thread = Thread {
            // Named for `top -H`, perf and the store benchmark (Linux keeps 15 bytes), through /proc: setting
            // Foundation's `Thread.name` left the kernel's name unchanged here (swift-corelibs-foundation, 6.3), and
            // Swift's Glibc module does not export pthread_setname_np.
            try? "ah-runlog-write".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            self.loop(cycle)
        }
        thread.start()
    }

    private func loop(_ cycle: () -> Bool) {
        // Monotonic between waits: a wall clock stepped back would otherwise stall the store for as long. (One wait
        // is on the wall clock, NSCondition's, but none is longer than `idleInterval`.)
        var lastCycle = DispatchTime.now().uptimeNanoseconds
        while true {
            self.condition.lock()
            // Waits out the pause since the last cycle began; `busy()` shortens an idle pause to `interval`.
            while !self.wakeRequested && !self.stopping {
                let pause = UInt64((self.idle ? self.idleInterval : self.interval).nanoseconds)
                let elapsed = DispatchTime.now().uptimeNanoseconds &- lastCycle
                guard elapsed < pause else { break }
                let remaining = Double(pause - elapsed) / 1e9
                if !self.condition.wait(until: Date(timeIntervalSinceNow: remaining)) { break }
            }
            self.wakeRequested = false
            let waiters = self.waiters
            self.waiters = []
            let stopping = self.stopping
            self.workArrived = false
            self.condition.unlock()
            lastCycle = DispatchTime.now().uptimeNanoseconds
            let busy = cycle()
            self.condition.lock()
            self.idle = !busy && !self.workArrived
            self.condition.unlock()
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

    /// New work (a new log): the next cycle comes within `interval`, not `idleInterval`. It does not run a cycle
    /// now: at a thousand new runs a second, a cycle (a store transaction) per run cost more than the runs.
    func busy() {
        self.condition.lock()
        self.workArrived = true
        if self.idle {
            self.idle = false
            self.condition.signal()
        }
        self.condition.unlock()
    }

    /// Runs a cycle now (a signal for another process's writer).
    func wake() {
        self.condition.lock()
        self.wakeRequested = true
        self.condition.signal()
        self.condition.unlock()
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
            self.wakeRequested = true
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
