import AgentHostCore
import Foundation
import Glibc
import Testing

@Suite("Callback slots")
struct CallbackSlotTests {
    @Test func aBusySlotNamesThePluginAndCallbackAndANestedCallbackRestoresTheOuterOne() {
        let region = CallbackSlotRegion.privateRegion()
        let watch = CallbackWatch()
        watch.adopt(region)
        final class Loop {}
        let loop = Loop()
        let (slot, crasher) = watch.slot(for: ObjectIdentifier(loop), endpoint: "crasher")
        let (_, echo) = watch.slot(for: ObjectIdentifier(loop), endpoint: "echo")
        #expect(region.busyCallbacks().isEmpty)

        let outer = slot.enter(tag: crasher | UInt64(WatchedCallback.message.rawValue), at: 1000)
        let inner = slot.enter(tag: echo | UInt64(WatchedCallback.close.rawValue), at: 2000)
        #expect(region.busyCallbacks().map(\.description) == ["plugin echo callback on_close"])
        slot.leave(restoring: inner)
        #expect(region.busyCallbacks() == [BusyCallback(loop: 0, endpoint: "crasher", callback: .message,
                                                         startedNanoseconds: 1000)])
        slot.leave(restoring: outer)
        #expect(region.busyCallbacks().isEmpty)
    }

    /// The cost the per-message path pays: enter and leave around each callback. Timed in this thread's CPU time,
    /// so other processes on a shared machine do not count.
    @Test func enteringAndLeavingCostsAFewNanoseconds() {
        let region = CallbackSlotRegion.privateRegion()
        let slot = region.slot(0)
        let rounds = 2_000_000
        let started = Self.threadCPUNanoseconds()
        for round in 0..<rounds {
            let mark = slot.enter(tag: 0x102, at: UInt64(round + 1))
            slot.leave(restoring: mark)
        }
        let perCallback = Double(Self.threadCPUNanoseconds() - started) / Double(rounds)
        print("callback slot enter+leave: \(perCallback) ns of CPU")
        // A debug build (the tests') takes ~30 ns, a release build a few; a plugin call with its frame in and out
        // costs microseconds.
        #expect(perCallback < 200)
    }

    static func threadCPUNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}
