import AgentHostPluginSDK
import AgentHostPluginTestKit
import Testing
import Greeter

@Test func greetsWhoeverWrites() throws {
    let harness = try PluginHarness(descriptor: PluginExport.descriptor(for: Greeter.self))
    #expect(harness.name == "greeter" && harness.routes == ["/greeter"])
    let client = try harness.connect(route: "/greeter")
    client.send("Ada")
    #expect(client.takeReceived() == [.text("Hello, Ada! (greeter \(Greeter.version))")])
    client.close()
    harness.drop()
}
