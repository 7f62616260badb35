/// The capability that lets an anonymous client resume its run: 128 random bits as 32 hex digits, made by the
/// server when the run starts and sent to the starter only, in the run's first frame (`resume_token`).
enum ResumeToken {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return [generator.next() as UInt64, generator.next() as UInt64]
            .map { word in
                let hex = String(word, radix: 16)
                return String(repeating: "0", count: 16 - hex.count) + hex
            }
            .joined()
    }

    /// Whether `presented` is `token`, in time that does not depend on where they differ (a token is a secret).
    static func matches(_ presented: String?, _ token: String?) -> Bool {
        guard let presented, let token else { return presented == nil && token == nil }
        var presentedBytes = presented.utf8.makeIterator()
        var difference = UInt8(presented.utf8.count == token.utf8.count ? 0 : 1)
        for byte in token.utf8 { difference |= byte ^ (presentedBytes.next() ?? 0) }
        return difference == 0
    }
}
