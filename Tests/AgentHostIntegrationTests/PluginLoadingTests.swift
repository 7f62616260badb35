import AgentHostPlugins
import Foundation
import Glibc
import Testing

/// Each failure fixture is compiled from C at test time into a directory beside the real echo plugin: the fixture
/// must be refused with the right reason, and /echo must keep serving.
@Suite("Plugin loading", .serialized)
struct PluginLoadingTests {
    static func expectEchoServes(_ server: TestServer) async throws {
        let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        try await client.sendText("still serving")
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "still serving")
        await client.close()
    }

    @Test(arguments: [
        ("missing_entry", PluginLoadError.Kind.missingEntry, "no agenthost_plugin_entry_v1 symbol"),
        ("wrong_major_version", .abiVersion, "major version 2"),
        ("descriptor_major_mismatch", .abiVersion, "ABI major 2"),
        ("short_struct", .descriptor, "descriptor is 40 bytes"),
        ("instance_create_fails", .instanceCreate, "model server unreachable"),
        ("bad_route", .descriptor, "must be a path"),
        ("missing_callbacks", .descriptor, "lacks the required callbacks on_message, on_event (NULL)"),
    ])
    func refusesBrokenPlugin(fixture: String, kind: PluginLoadError.Kind, reason: String) async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory)
        try await PluginFixtures.compileFixture(fixture, into: directory)
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.loaded.map(\.name) == ["echo"])
            let refused = try #require(server.refused.first)
            #expect(server.refused.count == 1)
            #expect(refused.file.hasSuffix("/\(fixture).so"))
            #expect(refused.error.kind == kind)
            #expect(refused.error.description.contains(reason), "\(refused.error.description)")
            try await Self.expectEchoServes(server)
        }
    }

    /// A Swift plugin that brought its own Swift runtime (-static-stdlib) is refused before dlopen, with what to
    /// change; the same source linked to the host's runtime gets past that check (its entry then refuses, as
    /// written), and /echo keeps serving.
    @Test func refusesASwiftPluginWithItsOwnRuntime() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory)
        try await PluginFixtures.compileSwiftFixture("swift_entry", into: directory, as: "static.so", staticStdlib: true)
        try await PluginFixtures.compileSwiftFixture("swift_entry", into: directory, as: "shared.so", staticStdlib: false)
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.loaded.map(\.name) == ["echo"])
            let refusals = Dictionary(uniqueKeysWithValues: server.refused.map {
                (URL(fileURLWithPath: $0.file).lastPathComponent, $0.error)
            })
            let ownRuntime = try #require(refusals["static.so"])
            #expect(ownRuntime.kind == .swiftRuntime)
            #expect(ownRuntime.description.contains("its own Swift runtime (built with -static-stdlib)"))
            #expect(ownRuntime.description.contains("Build it without -static-stdlib"))
            #expect(refusals["shared.so"]?.kind == .abiVersion)
            try await Self.expectEchoServes(server)
        }
    }

    /// A plugin built as version 1.0 was (descriptor to on_close, minor 0) loads and serves unchanged.
    @Test func aVersion10PluginStillLoadsAndServes() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("v1_0_echo", into: directory)
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.loaded.map(\.name) == ["old-echo"])
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/old-echo")
            try await client.sendText("from 1.0")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "from 1.0")
            await client.close()
        }
    }

    @Test func refusesASecondClaimOnARoute() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory, as: "a_echo.so")
        try await PluginFixtures.compileFixture("route_conflict", into: directory, as: "zz_route_conflict.so")
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.loaded.map(\.name) == ["echo"])
            #expect(server.refused.map(\.error.kind) == [.routeConflict])
            #expect(server.refused.first?.error.description.contains("already served by plugin 'echo'") == true)
            try await Self.expectEchoServes(server)
        }
    }

    @Test func refusesASecondPluginWithTheSameName() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory, as: "a.so")
        try await PluginFixtures.compileEcho(into: directory, as: "b.so")
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.loaded.map(\.file.lastPathComponent) == ["a.so"])
            #expect(server.refused.map(\.error.kind) == [.duplicateName])
            try await Self.expectEchoServes(server)
        }
    }

    @Test func refusesWorldWritableFiles() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory, as: "a_echo.so")
        let unsafe = try await PluginFixtures.compileFixture("lifecycle_recorder", into: directory)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: unsafe)
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.refused.map(\.error.kind) == [.unsafeFile])
            #expect(server.refused.first?.error.description.contains("world-writable") == true)
            try await Self.expectEchoServes(server)
        }
    }

    @Test func refusesSymbolicLinks() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory, as: "a_echo.so")
        let elsewhere = try PluginFixtures.makeDirectory()
        let target = try await PluginFixtures.compileFixture("lifecycle_recorder", into: elsewhere)
        try FileManager.default.createSymbolicLink(atPath: "\(directory)/recorder.so", withDestinationPath: target)
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.refused.map(\.error.kind) == [.unsafeFile])
            #expect(server.refused.first?.error.description.contains("symbolic link") == true)
            try await Self.expectEchoServes(server)
        }
    }

    @Test func refusesEverythingInAGroupWritableDirectory() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory)
        try FileManager.default.setAttributes([.posixPermissions: 0o775], ofItemAtPath: directory)
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.loaded.isEmpty)
            #expect(server.refused.first?.error.description.contains("plugin directory is group- or world-writable") == true)
        }
    }

    /// Before, any .so was dlopen'ed before its entry symbol was looked for: its constructors ran in the host.
    @Test func aLibraryThatIsNotAPluginIsRefusedWithoutRunningItsCode() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory, as: "a_echo.so")
        let marker = try PluginFixtures.makeDirectory() + "/constructor-ran"
        try await PluginFixtures.compile(source: "\(PluginFixtures.fixtureDirectory)/constructor_no_entry.c",
                                         into: directory, as: "library.so", defines: ["MARKER_PATH=\"\(marker)\""])
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.refused.map(\.error.kind) == [.missingEntry])
            #expect(!FileManager.default.fileExists(atPath: marker), "the library's constructor ran in the host")
            try await Self.expectEchoServes(server)
        }
    }

    @Test func refusesFilesThatAreNotSharedObjects() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory, as: "a_echo.so")
        let bogus = "\(directory)/bogus.so"
        try Data("this is not an ELF file".utf8).write(to: URL(fileURLWithPath: bogus))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: bogus)
        try await TestServer.with(pluginDirectory: directory) { server in
            #expect(server.refused.map(\.error.kind) == [.dlopen])
            try await Self.expectEchoServes(server)
        }
    }

    @Test func neverMapsTheFileInThePluginDirectory() async throws {
        let directory = try PluginFixtures.makeDirectory()
        let original = try await PluginFixtures.compileEcho(into: directory)
        try await TestServer.with(pluginDirectory: directory) { server in
            let plugin = try #require(server.loaded.first)
            #expect(plugin.stagedFile != original)
            let maps = Self.readProcFile("/proc/self/maps")
            #expect(!maps.contains(original))
            #expect(maps.contains(plugin.stagedFile))
            // Overwriting the live file in place (same inode, as `cp` does) must not disturb the running copy.
            try Data(repeating: 0, count: 4096).write(to: URL(fileURLWithPath: original))
            try await Self.expectEchoServes(server)
        }
    }
}

extension PluginLoadingTests {
    /// Reads a /proc file to its end. (Foundation's file readers trust the reported size, which is 0 in procfs,
    /// and can return only the first chunk.)
    static func readProcFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    var lastPathComponent: String { (self as NSString).lastPathComponent }
}
