import Testing

@testable import AgentHostCore

@Suite("Admin access")
struct AdminAccessTests {
    @Test(arguments: ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
    func loopbackPeersAreAdminsOnlyWhenTheOperatorSaysSo(ip: String) {
        #expect(AdminAccess.allows(remoteIP: ip, authorization: nil, token: nil, trustLoopback: true))
        // By default loopback is no credential: a same-host reverse proxy would relay anyone's request.
        #expect(!AdminAccess.allows(remoteIP: ip, authorization: nil, token: nil, trustLoopback: false))
        #expect(!AdminAccess.allows(remoteIP: ip, authorization: nil, token: "s3cret", trustLoopback: false))
        #expect(AdminAccess.allows(remoteIP: ip, authorization: "Bearer s3cret", token: "s3cret", trustLoopback: false))
    }

    @Test(arguments: [false, true])
    func remotePeersNeedTheToken(trustLoopback: Bool) {
        func allows(_ authorization: String?, _ token: String?) -> Bool {
            AdminAccess.allows(remoteIP: "10.1.2.3", authorization: authorization, token: token,
                               trustLoopback: trustLoopback)
        }
        #expect(!allows(nil, "s3cret"))
        #expect(!allows("Bearer wrong!", "s3cret"))
        #expect(!allows("s3cret", "s3cret"))
        #expect(!allows("Bearer ", ""))
        #expect(!allows("Bearer s3cret", nil))
        #expect(allows("Bearer s3cret", "s3cret"))
    }
}
