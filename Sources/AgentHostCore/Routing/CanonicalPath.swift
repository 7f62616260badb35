/// Request paths are compared byte for byte against routes and route policies, and plugins see them as sent. A path
/// that another reader (a plugin, a proxy, a file system) could take for a different one would let a client reach
/// a route under a weaker policy: `/a/secret/`, `/a//secret`, `/a/./secret`, `/a/x/../secret`, `/a/%73ecret`,
/// `/a/secret%00`, `/a/secret#x`, `/a/secret;x`. Such paths are refused before any route or policy is looked up,
/// rather than rewritten: a rewrite here and a different one in a plugin would disagree again.
public enum CanonicalPath {
    /// nil when `path` is canonical, else why it is not (for the 400 answer).
    public static func problem(with path: some StringProtocol) -> String? {
        let bytes = Array(path.utf8)
        guard bytes.first == UInt8(ascii: "/") else { return "the path must start with '/'" }
        if bytes.count > 1 && bytes.last == UInt8(ascii: "/") { return "the path must not end with '/'" }
        for segment in bytes.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if segment.isEmpty { return "the path has an empty segment ('//')" }
            if segment.elementsEqual([0x2E]) || segment.elementsEqual([0x2E, 0x2E]) {
                return "the path has a '.' or '..' segment"
            }
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") else {
                return "the path has a control character, a space, a backslash or a non-ASCII byte"
            }
            // A fragment has no place in a request; `;` starts path parameters, which some readers strip.
            guard byte != UInt8(ascii: "#") && byte != UInt8(ascii: ";") else {
                return "the path has a '#' or ';'"
            }
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
                else { return "the path has a '%' that is not followed by two hex digits" }
                let decoded = high << 4 | low
                if decoded < 0x20 || decoded == 0x7F || decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\")
                    || isUnreserved(decoded)
                {
                    return "the path percent-encodes a character that must be sent as is, or must not be sent"
                }
                index += 3
                continue
            }
            index += 1
        }
        return nil
    }

    /// RFC 3986 2.3: unreserved characters mean the same encoded or not, so an encoded one is a second spelling.
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "~")
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}
