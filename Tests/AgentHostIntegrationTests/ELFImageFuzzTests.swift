import Foundation
import Testing

@testable import AgentHostPlugins

/// The symbol reader runs on every plugin file before anything else looks at it: any bytes at all must give an
/// answer (exports or a reason), never a crash. Seeded mutations of a real plugin, so a failure is reproducible.
@Suite("ELF image")
struct ELFImageFuzzTests {
    @Test func readsTheEntrySymbolOfARealPlugin() async throws {
        let directory = try PluginFixtures.makeDirectory()
        let path = try await PluginFixtures.compileEcho(into: directory)
        let exports = try ELFImage(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(exports.functions.contains("agenthost_plugin_entry_v1"))
    }

    /// What the loader reads of a plugin's build: a C plugin has no Swift build, also when swiftc linked it (as
    /// SwiftPM links C plugins: empty swift5_ sections and libswiftCore.so come with it); a Swift one names its
    /// toolchain (the one that built this test binary) and whether it links the shared Swift runtime.
    @Test func readsWhatAPluginSaysOfItsSwiftBuild() async throws {
        let directory = try PluginFixtures.makeDirectory()
        func image(_ path: String) throws -> ELFImage { try ELFImage(Array(try Data(contentsOf: URL(fileURLWithPath: path)))) }
        let c = try image(try await PluginFixtures.compileEcho(into: directory))
        #expect(c.neededLibraries.contains("libc.so.6"))
        #expect(SwiftBuild(c) == nil)
        let linkedBySwiftc = try image(try await PluginFixtures.compileEchoLinkedBySwiftc(into: directory))
        #expect(linkedBySwiftc.neededLibraries.contains("libswiftCore.so"))
        #expect(linkedBySwiftc.sectionSizes.keys.contains { $0.hasPrefix("swift5_") })
        #expect(SwiftBuild(linkedBySwiftc) == nil)
        let shared = try #require(SwiftBuild(try image(try await PluginFixtures.compileSwiftFixture(
            "swift_entry", into: directory, as: "shared.so", staticStdlib: false))))
        #expect(!shared.carriesOwnRuntime)
        #expect(shared.toolchain != nil && shared.toolchain == SwiftBuild.host)
        let own = try #require(SwiftBuild(try image(try await PluginFixtures.compileSwiftFixture(
            "swift_entry", into: directory, as: "static.so", staticStdlib: true))))
        #expect(own.carriesOwnRuntime)
        #expect(SwiftBuild.hostRuntimeIsShared)  // this test binary, like the host, links the shared runtime
    }

    @Test func anyMutationGetsAnAnswer() async throws {
        let directory = try PluginFixtures.makeDirectory()
        let path = try await PluginFixtures.compileEcho(into: directory)
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        // The section header table: where the reader finds the offsets and sizes it trusts.
        let sectionTable = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(original[0x28 + $1]) << (8 * $1) })
        var random = SplitMix64(seed: 0xE1F)
        for _ in 0..<3000 {
            var bytes = original
            // The ELF header, the section headers, or anywhere; sometimes truncated.
            for _ in 0...random.next(upTo: 8) {
                let index: Int
                switch random.next(upTo: 3) {
                case 0: index = Int(random.next(upTo: 64))
                case 1: index = sectionTable + Int(random.next(upTo: UInt64(bytes.count - sectionTable)))
                default: index = Int(random.next(upTo: UInt64(bytes.count)))
                }
                bytes[index] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.next(upTo: 5) == 0 { bytes.removeLast(Int(random.next(upTo: UInt64(bytes.count)))) }
            _ = try? ELFImage(bytes)
        }
        // Section header fields at their extremes.
        for offset in [0x28, 0x3A, 0x3C] {
            var bytes = original
            for index in 0..<(offset == 0x28 ? 8 : 2) { bytes[offset + index] = 0xFF }
            _ = try? ELFImage(bytes)
        }
    }
}

/// Directory listings are read name by name from `readdir`'s records, never past them.
@Suite("Directory entries")
struct DirectoryEntriesTests {
    @Test func listsEveryNameOfALargeDirectoryExactly() throws {
        let directory = try PluginFixtures.makeDirectory()
        var random = SplitMix64(seed: 0xD1E)
        var expected: Set<String> = []
        for index in 0..<3000 {
            let name = "\(index)-" + String(repeating: "n", count: Int(random.next(upTo: 200)))
            #expect(FileManager.default.createFile(atPath: "\(directory)/\(name)", contents: nil))
            expected.insert(name)
        }
        #expect(Set(try #require(DirectoryEntries.names(in: directory))) == expected)
        #expect(DirectoryEntries.names(in: "\(directory)/missing") == nil)
    }
}
