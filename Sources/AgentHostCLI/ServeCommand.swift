import AgentHostAuth
import AgentHostCore
import AgentHostPlugins
import AgentHostRunLog
import AgentHostWorkers
import ArgumentParser
import Foundation
import Glibc
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
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

    @Option(help: "Number of event-loop threads (default: one per core; with --workers N, cores / N per worker, at least 1).")
    var eventLoops: Int?

    @Option(help: "Largest accepted frame payload in bytes (default 1 MiB).")
    var maxFrameSize: Int?

    @Option(help: "Largest accepted message in bytes, fragments joined (default 1 MiB).")
    var maxMessageSize: Int?

    @Option(help: "Outbound bytes queued per connection before it is closed with 1008 (default 8 MiB).")
    var outboundHardLimit: Int?

    @Option(help: "Open connections accepted at once; the next gets 503 (default 10000, 0 = no limit).")
    var maxConnections: Int?

    @Option(help: "Open connections per client IP; the next gets 429 (default 256, 0 = no limit).")
    var maxConnectionsPerAddress: Int?

    @Option(help: "Messages per second a connection may send before close 1008 (default 1000, 0 = no limit).")
    var maxMessagesPerSecond: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default info).")
    var logLevel: String?

    @Option(help: "PEM certificate chain (server certificate first): serve wss:// with TLS 1.2+.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(help: "PEM CA bundle for client certificates: require mTLS; the certificate subject is the identity.")
    var tlsClientCa: String?

    @Flag(help: "Also reload when the plugin directory changes (inotify, debounced), not only on SIGHUP.")
    var watch = false

    @Option(help: "Seconds a replaced plugin's connections may stay before close 1012 (default 30).")
    var drainTimeout: Double?

    @Option(help: "sha256sum-format file: only the listed plugin files, with those hashes, may load.")
    var allowlist: String?

    @Option(help: "Directory for what outlives the process: the run log's store (default: none, runs live in memory).")
    var stateDir: String?

    @Option(help: ArgumentHelp(
        "Worker processes (default 1: this process serves, no supervisor). Above 1, a supervisor holds the port, starts N worker processes and restarts those that die.",
        valueName: "N"))
    var workers: Int?

    @Option(help: ArgumentHelp(
        "Also serve a bare NIO echo handler at this route: the baseline the benchmark compares the plugin path with.",
        visibility: .hidden))
    var baselineEchoRoute: String?

    func run() async throws {
        var file = ConfigFile()
        if let config { file = try ConfigFile.load(path: config) }

        // A worker started by a supervisor (`--workers N`) adopts what it was handed before anything else runs.
        let worker = try WorkerContext.adoptFromEnvironment()
        let level = try Self.logLevel(self.logLevel ?? file.logLevel ?? "info")
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            if let worker { handler.metadata["worker"] = "\(worker.index)" }
            return handler
        }
        let logger = Logger(label: "agenthost")
        let workerCount = self.workers ?? file.workers ?? 1
        guard workerCount >= 1 else { throw ValidationError("--workers must be at least 1") }
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))
        HostFunctionTable.install(metrics: PluginMetrics(registry: metrics, logger: logger))

        var server = try await self.resolveServer(file)
        Self.raiseOpenFileLimit(logger: logger)
        if server.adminToken == nil && !server.adminTrustsLoopback {
            logger.notice(
                "admin routes (/plugins, /metrics) answer nobody: set admin_token (or AGENTHOST_ADMIN_TOKEN), or admin_trust_loopback for local development"
            )
        }
        let certificate = self.tlsCert ?? file.tlsCert
        let key = self.tlsKey ?? file.tlsKey
        if certificate != nil || key != nil {
            guard let certificate, let key else { throw ValidationError("TLS needs both --tls-cert and --tls-key") }
            do {
                server.tls = try TLSContextProvider(settings: TLSSettings(
                    certificateChainFile: certificate, privateKeyFile: key, clientCAFile: self.tlsClientCa ?? file.tlsClientCA))
            } catch {
                throw ValidationError("TLS: \(error)")
            }
        }
        if worker == nil && workerCount > 1 {
            try await self.supervise(workers: workerCount, server: server, file: file,
                                     stateDir: self.stateDir ?? file.stateDir, logger: logger)
            return
        }
        if let worker {
            server.port = worker.port
            server.reusePort = true
            server.workerHeader = "\(getpid())"
            worker.exitWhenSupervisorDies(grace: .nanoseconds(server.shutdownTimeout.nanoseconds) + .seconds(5))
        }
        // Worker processes share the cores: one loop per core each would start workers x cores threads.
        let threads = self.eventLoops ?? file.eventLoops ?? max(1, System.coreCount / (worker == nil ? 1 : workerCount))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let router = Router()

        // The run log before the plugins: their instances get its functions.
        // A worker writes as the incarnation its supervisor chose (which ends its live runs if it dies); the
        // supervisor holds the state dir's lock for it.
        var runLogConfiguration = file.runLog
        if let incarnation = worker?.incarnation { runLogConfiguration.incarnation = incarnation }
        let runLog = try await RunLogSetup.start(stateDir: self.stateDir ?? file.stateDir,
                                                 configuration: runLogConfiguration, lockHeldByParent: worker != nil,
                                                 logger: logger)

        // SIGHUP is trapped now, before the listening line: from then on it means "reload", never "terminate".
        let hangups = await UnixSignalsSequence(trapping: .sighup)

        // Plugins next: a host that says it is listening already serves its routes.
        let staging = try PluginStaging()
        var services: [any Service] = []
        var manager: PluginManager?
        var watcher: DirectoryWatcher?
        if let directory = self.plugins ?? file.plugins {
            let plugins = PluginManager(configuration: self.pluginManagerConfiguration(directory: directory, file: file),
                                        staging: staging, router: router, registry: HostFunctionTable.registry,
                                        group: group, logger: logger)
            Self.warnIfNothingServes(await plugins.reload(), directory: directory, logger: logger)
            watcher = (self.watch || file.watch) ? try DirectoryWatcher(directory: directory) : nil
            manager = plugins
        } else {
            logger.warning("no --plugins directory given: only /healthz is served")
        }

        let scheme = server.tls == nil ? "ws" : "wss"
        let connections = OpenConnections()
        var adminRoutes: [String: any AdminRoute] = [
            "/metrics": MetricsRoute(registry: metrics), "/health": HealthRoute(connections: connections),
        ]
        if let manager { adminRoutes["/plugins"] = PluginStatusRoute(manager: manager) }
        var siblings: PeerAdminServer?
        if let worker {
            // Each worker answers for itself on its private socket; the routes clients call answer for all.
            let local = Dictionary(uniqueKeysWithValues: adminRoutes.map { (String($0.key.dropFirst()), $0.value) })
            let cluster = ClusterAdmin(context: worker, local: local, group: group)
            siblings = try await PeerAdminServer.start(path: worker.socketPath(ofWorker: worker.index), group: group) {
                await cluster.answerSibling($0)
            }
            adminRoutes = cluster.routes()
        }
        let agentHost = AgentHostServer(
            configuration: server, router: router, registry: HostFunctionTable.registry,
            group: group, logger: logger, adminRoutes: adminRoutes, connections: connections,
            identityRoutes: IdentityRoutes([RunHistoryRoute.prefix: RunHistoryRoute(service: runLog.service)])
        ) { [host = server.host, port = server.port] address in
            if let worker {
                worker.notifyReady()  // the supervisor prints the listening line once every worker serves
                return
            }
            let shownHost = address.protocol == .inet6 ? "[\(address.ipAddress ?? host)]" : (address.ipAddress ?? host)
            print("agenthost listening on \(scheme)://\(shownHost):\(address.port ?? port)")
            fflush(nil)  // the line is how scripts and tests learn the port: it must not sit in a buffer
        }
        // SIGHUP re-reads the config file, then the certificate, then the plugin directory.
        var configReload: (@Sendable () async -> Void)?
        if let path = self.config {
            let reloader = ConfigReloader(path: path, command: self, loaded: file, server: agentHost, manager: manager,
                                          logger: logger)
            configReload = { await reloader.reload() }
        }
        services.append(ReloadService(manager: manager, signals: hangups, watcher: watcher, tls: server.tls,
                                      configReload: configReload, logger: logger))
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [agentHost] + services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await serviceGroup.run()

        siblings?.close()
        await manager?.shutdown()
        await runLog.shutdown()
        staging.removeAll()
        try await group.shutdownGracefully()
    }

    /// The server's configuration from the config file with the command line's flags on top, checked: at start,
    /// and again for every SIGHUP (a reload applies it to new connections; see `ConfigReloader`). TLS is made at
    /// start only (its files reload on their own).
    func resolveServer(_ file: ConfigFile) async throws -> ServerConfiguration {
        var server = file.server
        let (host, port) = try Self.parseListen(self.listen ?? file.listen ?? "127.0.0.1:8080")
        server.host = host
        server.port = port
        if let v = self.maxFrameSize { server.webSocket.maxFrameSize = v }
        if let v = self.maxMessageSize { server.webSocket.maxMessageSize = v }
        if let v = self.outboundHardLimit { server.webSocket.outboundHardLimit = v }
        if let v = self.maxConnections { server.maxConnections = v }
        if let v = self.maxConnectionsPerAddress { server.maxConnectionsPerAddress = v }
        if let v = self.maxMessagesPerSecond { server.webSocket.maxMessagesPerSecond = v }
        server.baselineEchoRoute = self.baselineEchoRoute
        guard server.webSocket.maxFrameSize <= Int(UInt32.max), server.webSocket.maxFrameSize >= 125 else {
            throw ValidationError("--max-frame-size must be between 125 and \(UInt32.max)")
        }
        guard server.webSocket.outboundLowWatermark <= server.webSocket.outboundHighWatermark else {
            throw ValidationError("websocket.outbound_low_watermark must not exceed outbound_high_watermark")
        }
        let environmentToken = ProcessInfo.processInfo.environment["AGENTHOST_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        server.adminToken = environmentToken ?? file.adminToken
        if let auth = file.auth {
            do {
                server.authenticator = try await TokenAuthenticator.make(auth)
            } catch {
                throw ValidationError("auth: \(error)")
            }
        }
        return server
    }

    /// The plugin manager's settings from the config file with the command line's flags on top (at start and on
    /// every SIGHUP).
    func pluginManagerConfiguration(directory: String, file: ConfigFile) -> PluginManager.Configuration {
        var configuration = PluginManager.Configuration(directory: directory)
        configuration.pluginConfigs = file.pluginConfigs
        configuration.allowlistPath = self.allowlist ?? file.allowlist
        if let size = file.maxPluginSize { configuration.maxFileSize = size }
        if let seconds = self.drainTimeout ?? file.drainTimeout {
            configuration.drainTimeout = .milliseconds(Int64(seconds * 1000))
        }
        if let seconds = file.runDrainTimeout {
            configuration.runDrainTimeout = .milliseconds(Int64(seconds * 1000))
        }
        return configuration
    }

    /// A server that serves no plugin route still listens (the routes may come with the next SIGHUP), but says so
    /// before its listening line, which would otherwise look like a healthy server's.
    static func warnIfNothingServes(_ report: ReloadReport, directory: String, logger: Logger) {
        guard report.serving == 0 else { return }
        let reason: String
        if let failure = report.failure {
            reason = failure
        } else if !report.refused.isEmpty {
            reason = "all \(report.refused.count) plugin file(s) in \(directory) were refused (see the lines above)"
        } else {
            reason = "\(directory) holds no plugin file (*.so)"
        }
        logger.warning("serving no plugin route: only the admin routes answer until a reload loads a plugin",
                       metadata: ["reason": "\(reason)"])
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
