import Testing

@testable import AgentHostCore

@Suite("UTF-8 validation")
struct UTF8ValidatorTests {
    static func validate(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { UTF8Validator.isValid($0) }
    }

    @Test(arguments: [
        "", "plain ascii that is longer than eight bytes", "κόσμε", "日本語テキスト", "emoji 🎉🚀", "\u{10FFFF}",
        String(repeating: "abcdefgh", count: 100) + "é",
    ])
    func acceptsValidText(_ text: String) {
        #expect(Self.validate(Array(text.utf8)))
    }

    @Test(arguments: [
        [0x80], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF],
        [0xCE, 0xBA, 0xE1, 0xBD], Array("valid prefix then".utf8) + [0xC3, 0x28],
    ] as [[UInt8]])
    func rejectsInvalidText(_ bytes: [UInt8]) {
        #expect(!Self.validate(bytes))
    }

    @Test func reportsIncompleteSequencesAtEverySplit() {
        let text = Array("a€b🎉c".utf8)
        for split in 0...text.count {
            var validator = UTF8Validator()
            let first = text[..<split].withUnsafeBytes { validator.feed($0) }
            #expect(first != .invalid)
            let second = text[split...].withUnsafeBytes { validator.feed($0) }
            #expect(second == .complete, "split at \(split)")
        }
    }

    @Test func failsFastWhenAFragmentCannotBeUTF8() {
        var validator = UTF8Validator()
        #expect(([0xCE, 0xBA, 0xE1] as [UInt8]).withUnsafeBytes { validator.feed($0) } == .incomplete)
        #expect(([0x28] as [UInt8]).withUnsafeBytes { validator.feed($0) } == .invalid)
    }
}
