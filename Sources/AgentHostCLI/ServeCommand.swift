import AgentHostCore
import AgentHostPlugins
import ArgumentParser
import Glibc
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the WebSocket routes of every plugin in a directory.")

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free port). Default 127.0.0.1:8080.")
    var listen: String?

    @Option(help: "Directory of plugin shared objects (*.so).")
    var plugins: String?

    @Option(help: "JSON config file; flags given here override it.")
    var config: String?

    @Option(help: "Number of event-loop threads (default: one per core).")
    var eventLoops: Int?

    @Option(help: "Largest accepted frame payload in bytes (default 1 MiB).")
    var maxFrameSize: Int?

    @Option(help: "Largest accepted message in bytes, fragments joined (default 1 MiB).")
    var maxMessageSize: Int?

    @Option(help: "Outbound bytes queued per connection before it is closed with 1008 (default 8 MiB).")
    var outboundHardLimit: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default info).")
    var logLevel: String?

    @Option(help: ArgumentHelp(
        "Also serve a bare NIO echo handler at this route: the baseline the benchmark compares the plugin path with.",
        visibility: .hidden))
    var baselineEchoRoute: String?

    func run() async throws {
        var file = ConfigFile()
        if let config { file = try ConfigFile.load(path: config) }

        let level = try Self.logLevel(self.logLevel ?? file.logLevel ?? "info")
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "agenthost")

        var server = file.server
        let (host, port) = try Self.parseListen(self.listen ?? file.listen ?? "127.0.0.1:8080")
        server.host = host
        server.port = port
        if let v = self.maxFrameSize { server.webSocket.maxFrameSize = v }
        if let v = self.maxMessageSize { server.webSocket.maxMessageSize = v }
        if let v = self.outboundHardLimit { server.webSocket.outboundHardLimit = v }
        server.baselineEchoRoute = self.baselineEchoRoute
        guard server.webSocket.maxFrameSize <= Int(UInt32.max), server.webSocket.maxFrameSize >= 125 else {
            throw ValidationError("--max-frame-size must be between 125 and \(UInt32.max)")
        }
        guard server.webSocket.outboundLowWatermark <= server.webSocket.outboundHighWatermark else {
            throw ValidationError("websocket.outbound_low_watermark must not exceed outbound_high_watermark")
        }

        Self.raiseOpenFileLimit(logger: logger)

        // Plugins first: a host that starts must already serve its routes when it says it is listening.
        let staging = try PluginStaging()
        var routes: [String: any WebSocketEndpoint] = [:]
        var loaded: [LoadedPlugin] = []
        if let directory = self.plugins ?? file.plugins {
            var loaderConfiguration = PluginLoader.Configuration(directory: directory)
            loaderConfiguration.pluginConfigs = file.pluginConfigs
            let loader = PluginLoader(configuration: loaderConfiguration, staging: staging, logger: logger)
            do {
                loaded = try loader.loadAll().loaded
            } catch {
                logger.error("cannot load plugins", metadata: ["reason": "\(error.description)"])
            }
            for plugin in loaded {
                for route in plugin.routes { routes[route] = plugin.endpoint }
            }
        } else {
            logger.warning("no --plugins directory given: only /healthz is served")
        }

        let threads = self.eventLoops ?? file.eventLoops ?? System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let scheme = "ws"
        let agentHost = AgentHostServer(
            configuration: server, router: Router(RouteTable(routes)), registry: HostFunctionTable.registry,
            group: group, logger: logger
        ) { address in
            let shownHost = address.protocol == .inet6 ? "[\(address.ipAddress ?? host)]" : (address.ipAddress ?? host)
            print("agenthost listening on \(scheme)://\(shownHost):\(address.port ?? port)")
            fflush(nil)  // the line is how scripts and tests learn the port: it must not sit in a buffer
        }
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [agentHost],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await serviceGroup.run()

        for plugin in loaded { plugin.endpoint.dropInstance() }
        staging.removeAll()
        try await group.shutdownGracefully()
    }

    static func parseListen(_ value: String) throws -> (String, Int) {
        guard let colon = value.lastIndex(of: ":") else {
            throw ValidationError("--listen must be HOST:PORT, got '\(value)'")
        }
        var host = String(value[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let port = Int(value[value.index(after: colon)...]), (0...65535).contains(port), !host.isEmpty else {
            throw ValidationError("--listen must be HOST:PORT with a port from 0 to 65535, got '\(value)'")
        }
        return (host, port)
    }

    static func logLevel(_ name: String) throws -> Logger.Level {
        guard let level = Logger.Level(rawValue: name.lowercased()) else {
            throw ValidationError("unknown log level '\(name)'")
        }
        return level
    }

    /// Each WebSocket is a file descriptor: lift the soft limit to the hard one, as servers commonly do.
    static func raiseOpenFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.debug("cannot raise the open file limit")
        }
    }
}
