/// Quotes a string as a JSON string literal (RFC 8259 section 7), for plugins that build small JSON frames without
/// Foundation. (The host has its own copy: the SDK depends on the C header alone, never on the host's modules.)
public enum JSONText {
    public static func quoted(_ value: String) -> String {
        // Most strings need no escape: one pass over the bytes, one concatenation.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + value + "\""
        }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
