import AgentHostPluginSDK
import AgentHostPluginTestKit
import Testing
import AsyncShout

@Test func answersFromItsTaskInCapitals() async throws {
    let harness = try PluginHarness(descriptor: AsyncPluginExport.descriptor(for: AsyncShoutPlugin.self))
    let client = try harness.connect(route: "/async-shout")
    client.send("hello")
    #expect(await client.waitForMessages(1))
    #expect(client.takeReceived() == [.text("HELLO (async-shout \(AsyncShoutPlugin.version))")])
    client.close()
    harness.drop()
}
