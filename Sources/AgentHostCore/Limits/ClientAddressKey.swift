import Glibc

/// The key a client is counted under for per-address limits.
///
/// An IPv4 address counts as itself. An IPv6 client usually holds a whole /64 (one subnet is the smallest
/// assignment, and privacy addresses rotate inside it), so counting single IPv6 addresses would give one client
/// 2^64 allowances: IPv6 addresses are grouped by their /64 prefix. IPv4-mapped IPv6 addresses count as the IPv4
/// address they carry.
public enum ClientAddressKey {
    public static func key(for ip: String) -> String {
        guard ip.contains(":") else { return ip }
        var address = in6_addr()
        guard inet_pton(AF_INET6, ip, &address) == 1 else { return ip }
        let bytes = withUnsafeBytes(of: address) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
        }
        var groups: [String] = []
        for index in stride(from: 0, to: 8, by: 2) {
            groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":") + "::/64"
    }
}
