import Foundation
import Testing

@testable import AgentHostCore

@Suite("JSON text")
struct JSONTextTests {
    @Test(arguments: ["plain", #"quote " and \ backslash"#, "line\nbreak\ttab\r", "\u{01}\u{1f} control", "ünïcödé ✓ 🎉", ""])
    func quotesSoThatAJSONParserReadsTheSameStringBack(_ text: String) throws {
        let document = "[" + JSONText.quoted(text) + "]"
        let parsed = try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String]
        #expect(parsed == [text])
    }
}
