import Testing
@testable import AgentHostAgentSDK

/// F7: an agent socket stopped delivering run frames for good (ping still answered, stop never completed). A run
/// sends under its lock and learns of BACKPRESSURE when `send` returns; the host's writable callback, on the event
/// loop, can run in between. The old code then marked the socket blocked after the callback had unblocked it:
/// no writable callback ever came again.
@Suite("writable gate")
struct WritableGateTests {
    @Test func aWritableCallbackDuringTheSendIsNotLost() {
        var gate = WritableGate()
        let ticket = gate.ticket()     // the run is about to send
        // send(): the host queues the frame and its buffer is over the high mark, so it will answer BACKPRESSURE;
        // before it returns, the event loop writes the buffer out and calls didBecomeWritable:
        gate.becameWritable()
        gate.backpressure(since: ticket)  // send returns BACKPRESSURE
        // The old code (`blocked = true` here, whatever came before) stayed blocked: the lost wakeup.
        #expect(!gate.isBlocked)
    }

    @Test func backpressureWithoutAWritableCallbackBlocksUntilOne() {
        var gate = WritableGate()
        gate.backpressure(since: gate.ticket())
        #expect(gate.isBlocked)
        // A ticket taken while blocked, then BACKPRESSURE again: still blocked until the callback.
        gate.backpressure(since: gate.ticket())
        #expect(gate.isBlocked)
        gate.becameWritable()
        #expect(!gate.isBlocked)
    }
}
