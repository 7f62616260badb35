import AgentHostCore
import AgentHostPlugins
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
}
