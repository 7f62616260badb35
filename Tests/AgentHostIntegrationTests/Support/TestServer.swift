import AgentHostCore
import AgentHostPlugins
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The real server, in process, on 127.0.0.1 port 0, with the plugins of a directory; shut down gracefully after
/// the test body.
struct TestServer {
    let port: Int
    let loaded: [LoadedPlugin]
    let refused: [RefusedPlugin]
    let server: AgentHostServer

    static func with(
        pluginDirectory: String?,
        logs: LogRecorder? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in },
        _ body: (TestServer) async throws -> Void
    ) async throws {
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        // Long request deadlines unless a test sets its own: beside the whole suite on two cores, a healthy server's
        // loop has been kept from a client's half-sent handshake for over 10 s, and cut it off (connection reset).
        configuration.handshakeTimeout = .seconds(30)
        configuration.http.requestTimeout = .seconds(30)
        configure(&configuration)
        var logger = logs?.logger() ?? Logger(label: "agenthost-test")
        if logs == nil {
            logger.logLevel = ProcessInfo.processInfo.environment["AGENTHOST_TEST_LOG"] == nil ? .critical : .debug
        }

        var loaded: [LoadedPlugin] = []
        var refused: [RefusedPlugin] = []
        let staging = try PluginStaging()
        defer { staging.removeAll() }
        if let pluginDirectory {
            let loader = PluginLoader(configuration: .init(directory: pluginDirectory), staging: staging, logger: logger)
            (loaded, refused) = try loader.loadAll()
        }
        var routes: [String: any WebSocketEndpoint] = [:]
        for plugin in loaded { for route in plugin.routes { routes[route] = plugin.endpoint } }

        let (addresses, continuation) = AsyncStream.makeStream(of: SocketAddress.self)
        let server = AgentHostServer(
            configuration: configuration, router: Router(RouteTable(routes)), registry: HostFunctionTable.registry,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger
        ) { address in
            continuation.yield(address)
        }
        let group = ServiceGroup(services: [server], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = addresses.makeAsyncIterator()
            guard let address = await iterator.next(), let port = address.port else {
                throw ServerError.noLocalAddress
            }
            do {
                try await body(TestServer(port: port, loaded: loaded, refused: refused, server: server))
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
