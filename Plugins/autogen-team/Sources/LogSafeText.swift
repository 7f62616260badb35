/// Text from a worker as it goes into the host log: worker stderr lines, and the worker's error messages (the SDK
/// logs a failed run's error, and the host writes plugin log text as it is).
///
/// Why: both carry client text (a task AutoGen refused is quoted in the error and in the traceback), and the host's
/// log is a line-oriented stream. Verbatim, a newline in a task forged a whole `critical` log line and an ESC
/// could drive the operator's terminal. Each stderr line now reaches the log through the plugin's log call (with
/// the host's timestamp, level and plugin label in front), and control characters are escaped.
enum LogSafeText {
    /// `line` with C0 and C1 controls, DEL, Unicode line/paragraph separators and bidirectional overrides written as
    /// `\n`, `\r`, `\t` or `\u{XX}`; a backslash is doubled, so an escape in the log always means an escaped byte.
    ///
    /// Not `JSONText.quoted`: JSON leaves DEL, C1 controls (0x9B is a terminal's CSI) and bidi overrides alone.
    static func escaped(_ line: String) -> String {
        var out = ""
        out.reserveCapacity(line.utf8.count)
        for scalar in line.unicodeScalars {
            if let short = Self.shortEscapes[scalar] {
                out += short
            } else if Self.mustEscape(scalar.value) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static let shortEscapes: [Unicode.Scalar: String] = ["\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"]

    private static func mustEscape(_ value: UInt32) -> Bool {
        value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029
            || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
    }
}
