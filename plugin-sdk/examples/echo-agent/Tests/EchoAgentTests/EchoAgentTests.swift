import AgentHostAgentSDK
import CAgentHostPlugin
import Testing
import EchoAgent

/// What the host reads before creating the route. The SDK's test kit does not simulate the host's run log,
/// which an agent route writes its runs to, so the instance is created and a run seen through a host:
/// `agenthost serve` with the built .so, then a `start` frame (README.md).
@Test func describesItsRoute() throws {
    let descriptor = AgentPlugin<EchoAgentRoute>.descriptor().pointee
    #expect(descriptor.abi_major == UInt32(AGENTHOST_ABI_MAJOR))
    #expect(String(cString: descriptor.name) == "echo-agent")
    #expect(String(cString: descriptor.version) == EchoAgentRoute.version)
    #expect(descriptor.route_count == 1)
    #expect(String(cString: try #require(descriptor.routes[0])) == "/agents/echo-agent")
}
