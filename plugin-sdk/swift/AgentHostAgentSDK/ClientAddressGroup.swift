#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The part of a client's address that live-run limits count by: the IPv4 address, or the /64 prefix of an IPv6
/// address (one host usually holds a whole /64, so counting full IPv6 addresses would not limit anyone). The port
/// is dropped: every socket of one client has its own.
enum ClientAddressGroup {
    /// `remoteAddress` as the host writes it: "127.0.0.1:53211" or "[2001:db8::1]:53211".
    static func of(_ remoteAddress: String) -> String {
        if remoteAddress.hasPrefix("["), let close = remoteAddress.firstIndex(of: "]") {
            let host = String(remoteAddress[remoteAddress.index(after: remoteAddress.startIndex)..<close])
            return self.ipv6Prefix(host) ?? host
        }
        // IPv4 "a.b.c.d:port"; an IPv6 address without brackets has several colons and no port.
        let colons = remoteAddress.filter { $0 == ":" }.count
        if colons == 1, let colon = remoteAddress.lastIndex(of: ":") { return String(remoteAddress[..<colon]) }
        if colons > 1 { return self.ipv6Prefix(remoteAddress) ?? remoteAddress }
        return remoteAddress
    }

    /// "2001:db8:1:2::/64" style: the first 8 bytes in hex groups. An IPv4-mapped address counts as its IPv4.
    private static func ipv6Prefix(_ host: String) -> String? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, host, &address) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &address) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return bytes[12...].map { String($0) }.joined(separator: ".")
        }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}
