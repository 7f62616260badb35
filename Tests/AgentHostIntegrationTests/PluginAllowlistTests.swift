import AgentHostPlugins
import Testing

@Suite("Plugin allowlist")
struct PluginAllowlistTests {
    static let hash = String(repeating: "ab", count: 32)

    @Test func readsSha256sumOutput() throws {
        let list = try PluginAllowlist.parse("# deployed 2026-11-27\n\(Self.hash)  echo.so\n\(Self.hash.uppercased()) *bin.so\n")
        #expect(list.hashes == ["echo.so": Self.hash, "bin.so": Self.hash])
        #expect(list.refusal(fileName: "echo.so", sha256: Self.hash) == nil)
        #expect(list.refusal(fileName: "other.so", sha256: Self.hash) == "not in the allowlist")
        #expect(list.refusal(fileName: "echo.so", sha256: String(repeating: "0", count: 64))?.contains("does not match") == true)
    }

    @Test(arguments: ["nothash  echo.so", "\(hash)", "\(hash)  plugins/echo.so", "\(hash)  a.so  extra"])
    func refusesMalformedLinesNamingTheLine(line: String) {
        #expect(throws: PluginAllowlist.ParseError.self) { try PluginAllowlist.parse("\n" + line, source: "list") }
        do {
            _ = try PluginAllowlist.parse("\n" + line, source: "list")
        } catch {
            #expect("\(error)".hasPrefix("list:2:"))
        }
    }
}
