import AgentHostCore
import Synchronization
import Testing

/// An atomic counter tasks can share.
private final class SharedCount: Sendable {
    let value: Atomic<Int>
    init(_ value: Int) { self.value = Atomic(value) }
    var current: Int { self.value.load(ordering: .relaxed) }
}

@Suite("State change signal")
struct StateChangeSignalTests {
    @Test func returnsAtOnceWhenTheConditionAlreadyHolds() async {
        let signal = StateChangeSignal()
        #expect(await signal.wait(until: .now + .seconds(60)) { true })
    }

    @Test func wakesWhenTheStateChangesAndIsSignalled() async {
        let signal = StateChangeSignal()
        let count = SharedCount(3)
        let waiter = Task {
            await signal.wait(until: .now + .seconds(60)) { count.current == 0 }
        }
        for _ in 0..<3 {
            count.value.subtract(1, ordering: .relaxed)
            signal.signal()
        }
        #expect(await waiter.value)
    }

    @Test func givesUpAtTheDeadline() async {
        let signal = StateChangeSignal()
        let started = ContinuousClock.now
        #expect(await signal.wait(until: started + .milliseconds(50)) { false } == false)
        #expect(ContinuousClock.now - started >= .milliseconds(50))
    }

    /// Many waiters and a signalling thread racing them: none misses its wake-up (each would otherwise hang until
    /// its one-minute deadline and fail).
    @Test func noWakeUpIsLostToARace() async {
        let signal = StateChangeSignal()
        let value = SharedCount(0)
        await withTaskGroup(of: Bool.self) { group in
            for target in 1...200 {
                group.addTask {
                    await signal.wait(until: .now + .seconds(60)) { value.current >= target }
                }
            }
            group.addTask {
                for _ in 1...200 {
                    value.value.add(1, ordering: .relaxed)
                    signal.signal()
                    await Task.yield()
                }
                return true
            }
            for await woke in group { #expect(woke) }
        }
    }

    /// A cancelled waiter stops waiting at once (its deadline an hour away), whether it had suspended or not.
    @Test func aCancelledWaitReturnsFalseAtOnce() async {
        let signal = StateChangeSignal()
        let waiter = Task { await signal.wait(until: .now + .seconds(3600)) { false } }
        waiter.cancel()
        #expect(await waiter.value == false)
        let suspended = Task { await signal.wait(until: .now + .seconds(3600)) { false } }
        await Task.yield()
        suspended.cancel()
        #expect(await suspended.value == false)
    }
}
