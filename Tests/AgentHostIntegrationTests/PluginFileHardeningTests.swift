import AgentHostPlugins
import Foundation
import Glibc
import Testing

/// What the host does with the files an operator (or someone else) puts in and around the plugin directory:
/// oversize files, refused builds' staged copies, staging left by a killed host, writable parent directories, and a
/// refusal whose cause went away.
@Suite("Plugin files", .serialized)
struct PluginFileHardeningTests {
    /// Waits until `/plugins` satisfies `condition`; returns the last listing.
    static func waitForPlugins(_ server: ServerProcess, _ condition: ([PluginStatus]) -> Bool) async throws
        -> [PluginStatus]
    {
        var plugins = try await server.plugins()
        for _ in 0..<500 where !condition(plugins) {
            try await Task.sleep(for: .milliseconds(10))
            plugins = try await server.plugins()
        }
        return plugins
    }

    static func stagingDirectories(in temporary: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: temporary)
            .filter { $0.hasPrefix("agenthost-staging-") }.map { "\(temporary)/\($0)" }
    }

    @Test func aFileOverTheSizeLimitIsRefusedUnreadAndTheOthersServe() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileVersionedEcho(tag: "v1", into: directory, as: "versioned.so")
        // 1 GiB as the file system reports it, without writing a byte (a sparse file).
        let huge = "\(directory)/huge.so"
        #expect(FileManager.default.createFile(atPath: huge, contents: nil, attributes: [.posixPermissions: 0o755]))
        #expect(truncate(huge, 1 << 30) == 0)
        let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
        try Data(#"{"max_plugin_size": 1048576}"#.utf8).write(to: URL(fileURLWithPath: config))
        let server = try await ServerProcess.start(arguments: ["--plugins", directory, "--config", config])
        defer { server.signal(SIGKILL) }
        let plugins = try await server.plugins()
        let refused = try #require(plugins.first { $0.state == "refused" })
        #expect(refused.reason?.contains("is 1073741824 bytes, over the 1048576-byte limit") == true, "\(refused)")
        #expect(server.residentBytes < 256 << 20, "the file was read: \(server.residentBytes) bytes resident")
        #expect(try await HotReloadTests.versionOfNewConnection(port: server.port) == "v1")
    }

    @Test func aRefusedBuildLeavesNoStagedCopyAndAKilledHostsStagingIsRemovedByTheNext() async throws {
        let temporary = try PluginFixtures.makeDirectory()
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileVersionedEcho(tag: "v1", into: directory, as: "versioned.so")
        try await PluginFixtures.compileFixture("missing_entry", into: directory)
        let first = try await ServerProcess.start(arguments: ["--plugins", directory], environment: ["TMPDIR": temporary])
        let staging = try #require(try Self.stagingDirectories(in: temporary).first)
        // The serving plugin's copy and the lock; not the refused file's copy.
        let staged = try FileManager.default.contentsOfDirectory(atPath: staging).sorted()
        #expect(staged.count == 2 && staged.contains(".lock") && staged.contains { $0.hasSuffix("versioned.so") },
                "\(staged)")

        first.signal(SIGKILL)
        _ = try await first.waitForExit()
        #expect(FileManager.default.fileExists(atPath: staging), "a killed host cannot clean up after itself")
        // Directories younger than a minute are spared (their host may be starting): this one died earlier.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-120)], ofItemAtPath: staging)
        let second = try await ServerProcess.start(arguments: ["--plugins", directory], environment: ["TMPDIR": temporary])
        defer { second.signal(SIGKILL) }
        let now = try Self.stagingDirectories(in: temporary)
        #expect(!now.contains(staging) && now.count == 1, "\(now)")
    }

    @Test func aPluginDirectoryUnderAWorldWritableParentIsRefused() async throws {
        let parent = try PluginFixtures.makeDirectory()
        let directory = "\(parent)/plugins"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        try await PluginFixtures.compileVersionedEcho(tag: "v1", into: directory, as: "versioned.so")
        // Anyone could rename `plugins` away and put their own directory in its place.
        #expect(chmod(parent, 0o777) == 0)
        let server = try await ServerProcess.start(arguments: ["--plugins", directory])
        defer { server.signal(SIGKILL) }
        let refused = try #require(try await server.plugins().first { $0.state == "refused" })
        #expect(refused.reason?.contains("parent \(parent) is group- or world-writable") == true, "\(refused)")
        // With the sticky bit (like /tmp), others cannot rename what they do not own: safe.
        #expect(chmod(parent, 0o1777) == 0)
        server.signal(SIGHUP)
        let plugins = try await Self.waitForPlugins(server) { $0.contains { $0.state == "serving" } }
        #expect(plugins.map(\.state) == ["serving"], "\(plugins)")
    }

    /// Before, a file refused because another claimed its name stayed refused (and its route unserved) after the
    /// other was removed, until its own bytes changed.
    @Test func aFileRefusedForANameClashServesOnceTheOtherIsGone() async throws {
        let (server, directory) = try await HotReloadTests.start(tag: "v1")
        defer { server.signal(SIGKILL) }
        let staging = try PluginFixtures.makeDirectory()
        let v3 = try await PluginFixtures.compileVersionedEcho(tag: "v3", into: staging, as: "versioned-next.so")
        #expect(rename(v3, "\(directory)/zz-versioned.so") == 0)
        server.signal(SIGHUP)
        let clashing = try await Self.waitForPlugins(server) { $0.contains { $0.state == "refused" } }
        #expect(clashing.first { $0.state == "refused" }?.reason?.contains("already named 'versioned'") == true)

        #expect(unlink("\(directory)/versioned.so") == 0)
        server.signal(SIGHUP)
        let plugins = try await Self.waitForPlugins(server) {
            $0.contains { $0.state == "serving" && $0.version == "v3" }
        }
        #expect(!plugins.contains { $0.state == "refused" }, "\(plugins)")
        #expect(try await HotReloadTests.versionOfNewConnection(port: server.port) == "v3")
    }

    /// The allowlist is re-read on every reload, so a file refused by it is reconsidered when it changes.
    @Test func aFileRefusedByTheAllowlistServesOnceTheAllowlistListsIt() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileVersionedEcho(tag: "v1", into: directory, as: "versioned.so")
        let allowlist = try PluginFixtures.makeDirectory() + "/plugins.sha256"
        try Data().write(to: URL(fileURLWithPath: allowlist))
        let server = try await ServerProcess.start(arguments: ["--plugins", directory, "--allowlist", allowlist])
        defer { server.signal(SIGKILL) }
        #expect(try await server.plugins().map(\.state) == ["refused"])
        let hash = try PluginFileSnapshot.read(directory: directory, fileName: "versioned.so").sha256
        try Data("\(hash)  versioned.so\n".utf8).write(to: URL(fileURLWithPath: allowlist))
        server.signal(SIGHUP)
        let plugins = try await Self.waitForPlugins(server) { $0.map(\.state) == ["serving"] }
        #expect(plugins.map(\.state) == ["serving"], "\(plugins)")
    }

    /// Before, a build in service stayed in service when the allowlist stopped listing it (it was "unchanged").
    @Test func aBuildTheAllowlistNoLongerListsIsRevoked() async throws {
        let (server, _, allowlist) = try await HotReloadTests.startAllowlisted()
        defer { server.signal(SIGKILL) }
        try Data().write(to: URL(fileURLWithPath: allowlist))
        server.signal(SIGHUP)
        let plugins = try await Self.waitForPlugins(server) { $0.contains { $0.state == "refused" } }
        #expect(plugins.first { $0.state == "refused" }?.reason?.contains("allowlist") == true, "\(plugins)")
        let client = try await RawWebSocketClient.connectTCP(port: server.port)
        #expect(try await withTimeout { try await client.handshake(path: "/versioned") } == 404)
    }

    /// A symbolic link on the way to the plugin directory is as safe as the directory holding it: before, only the
    /// directories above the link's target were checked, so anyone who could write beside the link could point it
    /// at another directory of libraries on the next reload.
    @Test func aSymlinkToThePluginDirectoryInAWritableDirectoryIsRefused() async throws {
        let safe = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileVersionedEcho(tag: "v1", into: safe, as: "versioned.so")
        let open = try PluginFixtures.makeDirectory()
        #expect(chmod(open, 0o777) == 0)
        #expect(symlink(safe, "\(open)/plugins") == 0)
        let server = try await ServerProcess.start(arguments: ["--plugins", "\(open)/plugins"])
        defer { server.signal(SIGKILL) }
        let refused = try #require(try await server.plugins().first { $0.state == "refused" })
        #expect(refused.reason?.contains("parent \(open) is group- or world-writable") == true, "\(refused)")
    }

    @Test func anUnchangedFileIsNotReadAgain() throws {
        let directory = try PluginFixtures.makeDirectory()
        let path = "\(directory)/plugin.so"
        try Data("not really a plugin".utf8).write(to: URL(fileURLWithPath: path))
        #expect(chmod(path, 0o755) == 0)
        let first = try PluginFileSnapshot.read(directory: directory, fileName: "plugin.so")
        guard case .unchanged = try PluginFileSnapshot.read(directory: directory, fileName: "plugin.so",
                                                             unlessUnchangedFrom: [first.fingerprint])
        else { Issue.record("an unchanged file was read again"); return }
        try Data("another build".utf8).write(to: URL(fileURLWithPath: path))
        guard case .changed(let second) = try PluginFileSnapshot.read(directory: directory, fileName: "plugin.so",
                                                                       unlessUnchangedFrom: [first.fingerprint])
        else { Issue.record("a changed file was taken for unchanged"); return }
        #expect(second.sha256 != first.sha256)
    }
}
