import AgentHostPluginTestKit
import Testing

/// Plugins/async-echo (Swift, async/await) driven by the test kit: its handler runs in its own task and sends from
/// there, so the test awaits the replies.
@Suite("async-echo plugin")
struct AsyncEchoPluginTests {
    @Test func echoesFromItsTaskAndCountsMessages() async throws {
        let harness = try PluginHarness(library: BuiltPlugin.path("agenthost-async-echo"))
        let client = try harness.connect(route: "/async-echo")
        client.send("one")
        client.send("two")
        #expect(await client.waitForMessages(2))
        #expect(client.takeReceived() == [.text("one"), .text("two")])
        #expect(harness.metric("async_echo_messages_total") == 2)
        #expect(harness.upgrade(target: "/async-echo", subprotocols: ["other", "echo"]) == .accepted(subprotocol: "echo"))
        client.close()
        harness.drop()
    }
}
