import AgentHostCore
import Testing

@Suite("Client address key")
struct ClientAddressKeyTests {
    @Test func ipv4CountsAsItself() {
        #expect(ClientAddressKey.key(for: "192.0.2.7") == "192.0.2.7")
        #expect(ClientAddressKey.key(for: "::ffff:192.0.2.7") == "192.0.2.7")
    }

    @Test func ipv6AddressesOfOneSubnetCountAsOne() {
        let a = ClientAddressKey.key(for: "2001:db8:1:2:aaaa::1")
        let b = ClientAddressKey.key(for: "2001:db8:1:2:ffff:eeee:dddd:cccc")
        let other = ClientAddressKey.key(for: "2001:db8:1:3::1")
        #expect(a == "2001:db8:1:2::/64")
        #expect(a == b)
        #expect(a != other)
        #expect(ClientAddressKey.key(for: "::1") == "0:0:0:0::/64")
    }
}
