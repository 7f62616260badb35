import AgentHostPluginTestKit
import Foundation
import Testing

/// Plugins/chat (C, ABI 1.2) driven by the test kit: rooms, the pre-upgrade check, presence on the harness's clock,
/// slow mode by pausing reads, the drain notice and the metrics, without a server and without waiting.
@Suite("chat plugin")
struct ChatPluginTests {
    static func harness(_ config: String = "{}") throws -> PluginHarness {
        try PluginHarness(library: BuiltPlugin.path("agenthost-chat"), config: config)
    }

    static func types(_ messages: [TestMessage]) -> [String] {
        messages.compactMap { message in
            message.text.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }?["type"]
                as? String
        }
    }

    @Test func relaysWithinARoomAndCountsIt() throws {
        let harness = try Self.harness()
        let alice = try harness.connect(route: "/chat", target: "/chat?room=blue")
        let bob = try harness.connect(route: "/chat", target: "/chat?room=blue")
        let carol = try harness.connect(route: "/chat", target: "/chat?room=red")
        for client in [alice, bob, carol] { _ = client.takeReceived() }
        alice.send("hi")
        #expect(alice.takeReceived() == [.text(#"{"type":"message","from":1,"text":"hi"}"#)])
        #expect(bob.takeReceived().count == 1)
        #expect(carol.takeReceived().isEmpty)
        #expect(harness.metric("chat_messages_total", labels: ["relayed"]) == 1)
        #expect(harness.metric("chat_members") == 3)
        #expect(harness.metric("chat_rooms") == 2)
        #expect(harness.observations("chat_message_bytes") == [2])
        bob.close()
        carol.close()
        #expect(Self.types(alice.takeReceived()) == ["left"])
        #expect(harness.metric("chat_members") == 1)
        #expect(harness.metric("chat_rooms") == 1)
        harness.drop()
    }

    @Test func refusesABadRoomBeforeTheUpgrade() throws {
        let harness = try Self.harness()
        guard case .refused(400, let body) = harness.upgrade(target: "/chat?room=Not%20valid") else {
            Issue.record("accepted a bad room")
            return
        }
        #expect(body.contains("room must be"))
        #expect(harness.upgrade(target: "/chat?room=ok", subprotocols: ["v0", "chat.v1"]) == .accepted(subprotocol: "chat.v1"))
        harness.drop()
    }

    @Test func presenceComesFromAnInstanceTimerOnTheHarnessClock() throws {
        let harness = try Self.harness(#"{"presence_interval_ms": 30000}"#)
        let member = try harness.connect(route: "/chat")
        _ = member.takeReceived()
        harness.advance(milliseconds: 29_999)
        #expect(member.takeReceived().isEmpty)
        harness.advance(milliseconds: 1)
        #expect(member.takeReceived() == [.text(#"{"type":"presence","members":1}"#)])
        harness.advance(milliseconds: 60_000)  // re-armed each time
        #expect(Self.types(member.takeReceived()) == ["presence", "presence"])
        harness.drop()
    }

    @Test func slowModePausesReadingUntilTheWindowEnds() throws {
        let harness = try Self.harness(#"{"presence_interval_ms": 0, "slow_mode_messages": 2, "slow_mode_window_ms": 1000}"#)
        let member = try harness.connect(route: "/chat")
        _ = member.takeReceived()
        member.send("one")
        member.send("two")
        #expect(member.isPaused)
        member.send("three")  // held by the host while paused
        #expect(Self.types(member.takeReceived()) == ["message", "message", "slowed"])
        harness.advance(milliseconds: 1000)
        #expect(!member.isPaused)
        #expect(member.takeReceived() == [.text(#"{"type":"message","from":1,"text":"three"}"#)])
        #expect(harness.metric("chat_slowed_total") == 1)
        harness.drop()
    }

    @Test func membersHearTheDrainNotice() throws {
        let harness = try Self.harness()
        let member = try harness.connect(route: "/chat")
        _ = member.takeReceived()
        harness.drain()
        #expect(Self.types(member.takeReceived()) == ["draining"])
        harness.drop()
    }
}
