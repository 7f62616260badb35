import AgentHostPluginTestKit
import CAgentHostPlugin
import Testing
import CShout

@Test func answersInCapitalsWithItsVersion() throws {
    let descriptor = try #require(agenthost_plugin_entry_v1(UInt32(AGENTHOST_ABI_MINOR)))
    let harness = try PluginHarness(descriptor: descriptor)
    #expect(harness.name == "c-shout" && harness.routes == ["/c-shout"])
    let client = try harness.connect(route: "/c-shout")
    client.send("hello")
    client.send(binary: [0, 255])
    #expect(client.takeReceived() == [.text("HELLO (c-shout \(harness.version))"), .binary([0, 255])])
    client.close()
    harness.drop()
}
