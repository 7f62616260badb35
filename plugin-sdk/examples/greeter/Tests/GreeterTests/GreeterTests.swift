import AgentHostPluginSDK
import AgentHostPluginTestKit
import Testing
import Greeter

@Test func greetsWhoeverWrites() throws {
    let harness = try PluginHarness(descriptor: PluginExport.descriptor(for: GreeterPlugin.self))
    #expect(harness.name == "greeter" && harness.routes == ["/greeter"])
    let client = try harness.connect(route: "/greeter")
    client.send("Ada")
    #expect(client.takeReceived() == [.text("Hello, Ada! (greeter \(GreeterPlugin.version))")])
    client.close()
    harness.drop()
}
