import AgentHostCore
@testable import AgentHostPlugins
import Foundation
import Logging
import NIOPosix
import Testing

/// The reloading plugin manager in process: what it tells the operator, and which threads do its blocking work.
@Suite("Plugin manager")
struct PluginManagerTests {
    static func manager(directory: String, logs: LogRecorder) throws -> (PluginManager, PluginStaging) {
        let staging = try PluginStaging()
        let manager = PluginManager(configuration: .init(directory: directory), staging: staging, router: Router(),
                                    registry: HostFunctionTable.registry, group: MultiThreadedEventLoopGroup.singleton,
                                    logger: logs.logger())
        return (manager, staging)
    }

    /// A file the loader skips is mentioned once (not on every reload), and a new one when it appears.
    @Test func mentionsEachIgnoredFileOnce() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: directory)
        try await PluginFixtures.compileEcho(into: directory, as: ".echo.so")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: "\(directory)/echo.so.new"))
        let logs = LogRecorder()
        let (manager, staging) = try Self.manager(directory: directory, logs: logs)
        defer { staging.removeAll() }
        var report = await manager.reload()
        #expect(report.serving == 1)
        report = await manager.reload()
        #expect(report.unchanged == 1)
        try Data("more".utf8).write(to: URL(fileURLWithPath: "\(directory)/README"))
        await manager.reload()
        let ignored = logs.recorded.filter { $0.message.hasPrefix("ignored in the plugin directory") }
        #expect(ignored.map { $0.metadata["file"] ?? "" } == [
            "\(directory)/.echo.so", "\(directory)/echo.so.new", "\(directory)/README",
        ])
        #expect(ignored.allSatisfy { $0.level == .notice })
        await manager.shutdown()
    }

    /// instance_create and instance_drop may block for seconds (a plugin starting or stopping its own workers):
    /// they run on NIO's blocking pool, never on Swift's cooperative pool, which also
    /// answers authentication and the admin routes.
    @Test func runsInstanceCreateAndDropOnTheBlockingThreadPool() async throws {
        let directory = try PluginFixtures.makeDirectory()
        let record = try PluginFixtures.makeDirectory() + "/threads.log"
        try await PluginFixtures.compile(source: "\(PluginFixtures.fixtureDirectory)/thread_names.c", into: directory,
                                         as: "thread_names.so", defines: ["THREAD_LOG=\"\(record)\""])
        let logs = LogRecorder()
        let (manager, staging) = try Self.manager(directory: directory, logs: logs)
        defer { staging.removeAll() }
        #expect(await manager.reload().serving == 1)
        try FileManager.default.removeItem(atPath: "\(directory)/thread_names.so")
        #expect(await manager.reload().removed == ["thread-names"])
        // The removed generation drains (no connection: at once) in a task of its own.
        #expect(await eventually { logs.recorded.contains { $0.message == "plugin generation retired" } })
        let lines = try String(contentsOfFile: record, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        // The singleton pool's threads are "SGLTN-TP-#n".
        #expect(lines.first?.hasPrefix("create SGLTN-TP-#") == true, "\(lines)")
        #expect(lines.last?.hasPrefix("drop SGLTN-TP-#") == true, "\(lines)")
        await manager.shutdown()
    }

    /// ABI 1.2 through the host: capabilities, the instance's own posts and timers (made even from
    /// instance_create, delivered after it returns), the drain notice, and the promise that every timer is
    /// delivered once: the one still pending is handed back cancelled after on_drain and before instance_drop.
    @Test func instanceEventsCapabilitiesAndTheDrainNotice() async throws {
        let directory = try PluginFixtures.makeDirectory()
        let record = try PluginFixtures.makeDirectory() + "/platform.log"
        try await PluginFixtures.compile(source: "\(PluginFixtures.fixtureDirectory)/platform_v12.c", into: directory,
                                         as: "platform.so", defines: ["PLATFORM_LOG=\"\(record)\""])
        let logs = LogRecorder()
        let (manager, staging) = try Self.manager(directory: directory, logs: logs)
        defer { staging.removeAll() }
        #expect(await manager.reload().serving == 1)
        func lines() -> [String] {
            ((try? String(contentsOfFile: record, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        // All three events of instance_create delivered (the post, the fired timer, the cancelled one handed back)
        // before the drain starts: waiting for the fired one alone let the others come after the drain notice.
        #expect(await eventually { lines().filter { $0.hasPrefix("instance kind=") }.count >= 3 })
        try FileManager.default.removeItem(atPath: "\(directory)/platform.so")
        await manager.reload()
        #expect(await eventually { lines().last?.hasPrefix("drop") == true })
        let recorded = lines()
        #expect(Array(recorded.prefix(5)) == [
            "info status=0 abi=1.2 version=\(AgentHostVersion.current)",
            "has pause_reading=1 log_release=1 nope=0",
            "level 0",  // the recording logger writes every level
            "cancel status=0 again=1",  // cancelled once; the second cancel finds nothing pending (CLOSED)
            "create returned",  // events made in instance_create come after it returned
        ])
        // NIO runs a due timer and an immediate task in either order: the three come in some order, once each.
        let afterCreate = Array(recorded.dropFirst(5))
        #expect(Set(afterCreate.prefix(3)) == [
            "instance kind=1 id=11 data=none cancelled=0", "instance kind=2 id=0 data=cancelled cancelled=1",
            "instance kind=2 id=0 data=fired cancelled=0",
        ])
        let drained = Array(afterCreate.dropFirst(3))
        #expect(drained.first == "drain post=0")
        #expect(drained.last == "drop timer_start=1")  // CLOSED: the instance is going
        // Between them, each exactly once: the post made in on_drain (fired, or handed back if the drop came
        // first) and the timer still pending, handed back cancelled.
        let between = drained.dropFirst().dropLast()
        #expect(between.count == 2)
        #expect(between.filter { $0.hasPrefix("instance kind=1 id=12 data=none cancelled=") }.count == 1)
        #expect(between.contains("instance kind=2 id=0 data=pending cancelled=1"))
        await manager.shutdown()
    }

    /// on_upgrade through the real server: it sees the request without its credentials, chooses the
    /// subprotocol, and refuses with its own status and body before any connection opens.
    @Test func thePreUpgradeHookDecidesBeforeThe101() async throws {
        let directory = try PluginFixtures.makeDirectory()
        let record = try PluginFixtures.makeDirectory() + "/platform.log"
        try await PluginFixtures.compile(source: "\(PluginFixtures.fixtureDirectory)/platform_v12.c", into: directory,
                                         as: "platform.so", defines: ["PLATFORM_LOG=\"\(record)\""])
        try await TestServer.with(pluginDirectory: directory) { server in
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            let status = try await client.handshake(path: "/platform?token=secret&x=1", extraHeaders: [
                "Authorization: Basic c2VjcmV0", "Sec-WebSocket-Protocol: bearer.abc, first, second", "X-Custom: 1",
            ])
            #expect(status == 101)
            #expect(client.handshakeResponse.lowercased().contains("sec-websocket-protocol: second"))
            await client.close()

            let refused = try await RawWebSocketClient.connectTCP(port: server.port)
            #expect(try await refused.handshake(path: "/platform?refuse=1") == 409)
            #expect(refused.handshakeResponse.contains("text/plain"))
            #expect(try await refused.readToEnd().hasSuffix("not this one"))
        }
        let lines = try String(contentsOfFile: record, encoding: .utf8).split(separator: "\n")
        let seen = try #require(lines.first { $0.hasPrefix("upgrade target=/platform?x=1") })
        #expect(seen.contains("x-custom"))
        #expect(!seen.contains("authorization") && !seen.contains("sec-websocket-protocol"), "\(seen)")
        #expect(seen.hasSuffix("subprotocols=first,second"), "\(seen)")
    }

    /// has_function knows every function of the table, and the table has every function it names (read from the C
    /// struct's own fields, so a function added to the header and forgotten here fails).
    @Test func hasFunctionNamesEveryFunctionOfTheTable() {
        let fields = Mirror(reflecting: HostFunctionTable.table.pointee).children.compactMap(\.label)
            .filter { !["struct_size", "abi_major", "abi_minor"].contains($0) }
        #expect(fields.count == 29)
        #expect(Set(fields) == HostFunctionTable.functionNames)
        for child in Mirror(reflecting: HostFunctionTable.table.pointee).children
        where HostFunctionTable.functionNames.contains(child.label ?? "") {
            #expect(String(describing: child.value) != "nil", "\(child.label ?? "") is not filled in")
        }
    }
}
