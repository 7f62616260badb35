import AgentHostPluginTestKit
import Testing

/// Plugins/echo (C), driven by the test kit.
@Suite("echo plugin")
struct EchoPluginTests {
    @Test func echoesTextAsTextAndBinaryAsBinary() throws {
        let harness = try PluginHarness(library: BuiltPlugin.path("agenthost-echo"))
        #expect(harness.name == "echo" && harness.routes == ["/echo"])
        let client = try harness.connect(route: "/echo")
        client.send("hello")
        client.send(binary: [0, 255])
        #expect(client.takeReceived() == [.text("hello"), .binary([0, 255])])
        client.close()
        #expect(!client.isOpen)
        harness.drop()
    }
}
