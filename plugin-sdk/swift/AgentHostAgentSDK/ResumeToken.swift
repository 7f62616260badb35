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

}
