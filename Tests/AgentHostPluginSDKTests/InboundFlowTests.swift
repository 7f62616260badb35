import Synchronization
import Testing

@testable import AgentHostPluginSDK

@Suite("Async inbound flow control")
struct InboundFlowTests {
    final class Calls: Sendable {
        let log = Mutex<[String]>([])
        var recorded: [String] { self.log.withLock { $0 } }
    }

    @Test func pausesAboveTheHighWaterMarkAndResumesAtTheLowOne() {
        let calls = Calls()
        let flow = InboundFlow(highWater: 1000, lowWater: 250, pause: { calls.log.withLock { $0.append("pause") } },
                               resume: { calls.log.withLock { $0.append("resume") } })
        for _ in 0..<5 { flow.received(300) }  // 1500 buffered: paused once, at the fourth
        #expect(calls.recorded == ["pause"])
        #expect(flow.isPaused)
        for _ in 0..<4 { flow.consumed(300) }  // 300 left: still above 250
        #expect(calls.recorded == ["pause"])
        flow.consumed(300)
        #expect(calls.recorded == ["pause", "resume"])
        flow.received(10)
        #expect(calls.recorded == ["pause", "resume"])
    }

    /// The SDK's stream: what the handler takes is what lets the connection be read again.
    @Test func takingMessagesFromTheStreamCountsAsConsumed() async {
        let calls = Calls()
        let flow = InboundFlow(highWater: 4, lowWater: 0, pause: { calls.log.withLock { $0.append("pause") } },
                               resume: { calls.log.withLock { $0.append("resume") } })
        let (stream, continuation) = AsyncStream.makeStream(of: Message.self)
        let messages = InboundMessages(stream: stream, flow: flow)
        for text in ["abc", "de"] {
            flow.received(text.utf8.count)
            continuation.yield(.text(text))
        }
        continuation.finish()
        #expect(calls.recorded == ["pause"])
        var taken: [Message] = []
        for await message in messages { taken.append(message) }
        #expect(taken == [.text("abc"), .text("de")])
        #expect(calls.recorded == ["pause", "resume"])
    }
}
