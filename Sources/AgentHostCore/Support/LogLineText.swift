/// Plugin text as it goes into the host's log, which is a line-oriented stream read by people and by log shippers.
///
/// Plugins log what their clients send (a refused task, a bad frame), so their text may hold a newline (a forged
/// log line of any level), an ESC or a C1 CSI (0x9B) driving the operator's terminal, or a bidirectional override
/// hiding what a line says. Those are written as `\u{XX}` here, for every plugin, so no plugin needs its own rule.
/// Backslashes are left alone: text a plugin escaped itself reads the same.
public enum LogLineText {
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { Self.mustEscape($0.value) }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if Self.mustEscape(scalar.value) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func mustEscape(_ value: UInt32) -> Bool {
        value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029
            || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
    }
}
