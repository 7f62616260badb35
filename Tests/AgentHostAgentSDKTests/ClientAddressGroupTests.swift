import Testing
@testable import AgentHostAgentSDK

/// F6: live-run limits count by client address: IPv4 without the port, IPv6 by /64 prefix.
@Suite("client address groups")
struct ClientAddressGroupTests {
    @Test func thePortDoesNotCount() {
        #expect(ClientAddressGroup.of("127.0.0.1:53211") == ClientAddressGroup.of("127.0.0.1:40000"))
        #expect(ClientAddressGroup.of("127.0.0.1:53211") == "127.0.0.1")
        #expect(ClientAddressGroup.of("127.0.0.1:1") != ClientAddressGroup.of("127.0.0.2:1"))
    }

    @Test func ipv6CountsByItsSlash64() {
        let a = ClientAddressGroup.of("[2001:db8:1:2::1]:443")
        #expect(a == ClientAddressGroup.of("[2001:db8:1:2:ffff:0:0:9]:80"))
        #expect(a != ClientAddressGroup.of("[2001:db8:1:3::1]:443"))
        #expect(ClientAddressGroup.of("[::ffff:10.0.0.1]:5") == "10.0.0.1")
    }
}
