/// A read-only HTTP route for operators (such as `GET /plugins`), answered by whatever layer owns the data.
/// Admin routes are served only to loopback peers or to requests bearing the configured admin token.
public protocol AdminRoute: Sendable {
    /// The body to answer with (status 200).
    func respond() async -> String
    /// Its content type; JSON unless said otherwise.
    var contentType: String { get }
}

extension AdminRoute {
    public var contentType: String { "application/json" }
}

/// Who may call admin routes.
///
/// Requests bearing the admin token. Loopback peers only when the operator says so (`admin_trust_loopback`): a
/// reverse proxy or any other local process relays requests from loopback, so loopback says nothing about who asks.
enum AdminAccess {
    static func allows(remoteIP: String?, authorization: String?, token: String?, trustLoopback: Bool) -> Bool {
        if trustLoopback, let ip = remoteIP, ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.") {
            return true
        }
        guard let token, !token.isEmpty, let authorization, authorization.hasPrefix("Bearer ") else { return false }
        return ConstantTime.equals(Array(authorization.utf8.dropFirst(7)), Array(token.utf8))
    }
}

/// Secrets are compared without an early exit, so response time says nothing about how much of a guess was right.
public enum ConstantTime {
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
