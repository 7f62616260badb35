import Testing

@testable import AgentHostCore

@Suite("Admin access")
struct AdminAccessTests {
    @Test(arguments: ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
    func loopbackPeersAreAdmins(ip: String) {
        #expect(AdminAccess.allows(remoteIP: ip, authorization: nil, token: nil))
    }

    @Test func remotePeersNeedTheToken() {
        #expect(!AdminAccess.allows(remoteIP: "10.1.2.3", authorization: nil, token: "s3cret"))
        #expect(!AdminAccess.allows(remoteIP: "10.1.2.3", authorization: "Bearer wrong!", token: "s3cret"))
        #expect(!AdminAccess.allows(remoteIP: "10.1.2.3", authorization: "s3cret", token: "s3cret"))
        #expect(!AdminAccess.allows(remoteIP: "10.1.2.3", authorization: "Bearer ", token: ""))
        #expect(!AdminAccess.allows(remoteIP: "10.1.2.3", authorization: "Bearer s3cret", token: nil))
        #expect(AdminAccess.allows(remoteIP: "10.1.2.3", authorization: "Bearer s3cret", token: "s3cret"))
    }
}
