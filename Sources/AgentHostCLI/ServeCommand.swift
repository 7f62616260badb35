import AgentHostAuth
import AgentHostCore
import AgentHostPlugins
import AgentHostRunLog
import AgentHostSettings
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
        abstract: "Serve the WebSocket routes of every plugin in a directory.",
        usage: "agenthost serve [--config FILE] [--SETTING VALUE]...",
        discussion: ServeSettings.helpText)

    @Option(help: "JSON config file (every setting below can be set in it; a flag here wins). SIGHUP re-reads it.")
    var config: String?

    @Option(help: ArgumentHelp(
        "Also serve a bare NIO echo handler at this route: the baseline the benchmark compares the plugin path with.",
        visibility: .hidden))
    var baselineEchoRoute: String?

    /// Every other flag is a setting of `ServeSettings.catalog`, parsed and checked there (the same check as the
    /// config file's), so a setting is declared once and not again here.
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Settings, as --NAME VALUE (listed above).",
                                                             valueName: "setting"))
    var settingArguments: [String] = []

    func validate() throws {
        do {
            // A wrong flag or flag value is a usage error, said before anything starts.
            try ServeSettings.check(commandLine: try ServeSettings.parse(commandLine: self.settingArguments))
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The settings from `configFile` with the command line's flags on top, checked.
    func resolveSettings(configFile: String?) throws -> ServeSettings {
        try ServeSettings.resolve(configFile: configFile,
                                  commandLine: try ServeSettings.parse(commandLine: self.settingArguments))
    }

    /// What this process serves with, at start and again for every SIGHUP (see `ConfigReloader`): the config
    /// file; for a worker, the file its supervisor last accepted, with the restart-only settings the supervisor
    /// started with (see `WorkerConfigSnapshot`).
    func resolveSettings(worker: WorkerContext?) throws -> ServeSettings {
        guard let worker, self.config != nil else { return try self.resolveSettings(configFile: self.config) }
        let accepted = try self.resolveSettings(configFile: WorkerConfigSnapshot.acceptedPath(directory: worker.directory))
        let started = try self.resolveSettings(configFile: WorkerConfigSnapshot.startedPath(directory: worker.directory))
        return accepted.keepingRestartOnly(from: started)
    }

    func run() async throws {
        // A worker started by a supervisor (`--workers N`) adopts what it was handed before anything else runs.
        let worker = try WorkerContext.adoptFromEnvironment()
        let settings = try self.resolveSettings(worker: worker)
        if worker == nil { try settings.checkListenHost() }  // a worker's supervisor checked it
        LoggingSystem.bootstrap { [level = settings.logLevel] label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            if let worker { handler.metadata["worker"] = "\(worker.index)" }
            return handler
        }
        let logger = Logger(label: "agenthost")
        let workerCount = settings.workers
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))
        HostFunctionTable.install(metrics: PluginMetrics(registry: metrics, logger: logger))

        var server = try await self.makeServer(settings)
        Self.raiseOpenFileLimit(logger: logger)
        if server.adminToken == nil && !server.adminTrustsLoopback {
            logger.notice(
                "admin routes (/plugins, /metrics) answer nobody: set admin_token (or AGENTHOST_ADMIN_TOKEN), or admin_trust_loopback for local development"
            )
        }
        if let certificate = settings.tlsCert, let key = settings.tlsKey {  // both or neither: checked
            do {
                server.tls = try TLSContextProvider(settings: TLSSettings(
                    certificateChainFile: certificate, privateKeyFile: key, clientCAFile: settings.tlsClientCA))
            } catch {
                throw ValidationError("TLS: \(error)")
            }
        }
        if worker == nil && workerCount > 1 {
            try await self.supervise(workers: workerCount, server: server, settings: settings, logger: logger)
            return
        }
        if let worker {
            server.port = worker.port
            server.reusePort = true
            server.workerHeader = "\(getpid())"
            worker.exitWhenSupervisorDies(grace: .nanoseconds(server.shutdownTimeout.nanoseconds) + .seconds(5))
        }
        // Worker processes share the cores: one loop per core each would start workers x cores threads.
        let threads = settings.eventLoops ?? max(1, System.coreCount / (worker == nil ? 1 : workerCount))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let router = Router()

        // The run log before the plugins: their instances get its functions.
        // A worker writes as the incarnation its supervisor chose (which ends its live runs if it dies); the
        // supervisor holds the state dir's lock for it.
        var runLogConfiguration = settings.runLog
        if let incarnation = worker?.incarnation { runLogConfiguration.incarnation = incarnation }
        let runLog = try await RunLogSetup.start(stateDir: settings.stateDir,
                                                 configuration: runLogConfiguration, lockHeldByParent: worker != nil,
                                                 logger: logger)

        // SIGHUP is trapped now, before the listening line: from then on it means "reload", never "terminate".
        let hangups = await UnixSignalsSequence(trapping: .sighup)

        // Plugins next: a host that says it is listening already serves its routes.
        let staging = try PluginStaging()
        var services: [any Service] = []
        var manager: PluginManager?
        var watcher: DirectoryWatcher?
        if let directory = settings.plugins {
            let plugins = PluginManager(configuration: settings.pluginManagerConfiguration(directory: directory),
                                        staging: staging, router: router, registry: HostFunctionTable.registry,
                                        group: group, logger: logger)
            Self.warnIfNothingServes(await plugins.reload(), directory: directory, logger: logger)
            watcher = settings.watch ? try DirectoryWatcher(directory: directory) : nil
            manager = plugins
        } else {
            logger.warning("no plugin directory given (--plugins or plugins): only /healthz and the admin routes are served")
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
            let reloader = ConfigReloader(path: path, command: self, worker: worker, started: settings,
                                          server: agentHost, manager: manager, logger: logger)
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

    /// The listening server's configuration from resolved settings: the admin token, the authenticator (its key
    /// files read, its JWKS fetched), the hidden baseline route. At start and for every SIGHUP; TLS is made at
    /// start only (its files reload on their own).
    func makeServer(_ settings: ServeSettings) async throws -> ServerConfiguration {
        var server = settings.server
        server.baselineEchoRoute = self.baselineEchoRoute
        server.adminToken = settings.adminToken
        if let auth = settings.auth {
            do {
                server.authenticator = try await TokenAuthenticator.make(auth)
            } catch {
                throw ValidationError("auth: \(error)")
            }
        }
        return server
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
