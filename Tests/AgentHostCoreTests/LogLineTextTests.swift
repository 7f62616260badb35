import AgentHostCore
import Testing

@Suite("Log line text")
struct LogLineTextTests {
    @Test func plainTextIsKept() {
        #expect(LogLineText.escaped(#"run failed: "quoted" \n stays ✓"#) == #"run failed: "quoted" \n stays ✓"#)
    }

    @Test func aNewlineCannotStartAForgedLine() {
        let forged = "bad task\n2026-12-01T00:00:00+0000 critical agenthost: fake"
        #expect(!LogLineText.escaped(forged).contains("\n"))
        #expect(LogLineText.escaped("a\u{1B}[2Jb\u{9B}c\u{202E}d\r") == #"a\u{1B}[2Jb\u{9B}c\u{202E}d\u{D}"#)
    }
}
