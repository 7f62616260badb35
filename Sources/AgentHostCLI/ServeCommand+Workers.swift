import AgentHostCore
import AgentHostRunLog
import AgentHostSettings
import AgentHostWorkers
import ArgumentParser
import Foundation
import Logging
import NIOCore
import UnixSignals

extension ServeCommand {
    /// `--workers N` with N > 1: this process becomes the supervisor. It has already checked the configuration
    /// (a worker would refuse the same file), holds the port, starts the workers with this same command line,
    /// prints the listening line when all of them serve, and returns when they were drained.
    func supervise(workers: Int, server: ServerConfiguration, settings: ServeSettings, logger: Logger) async throws {
        // Trapped before the first worker starts: from then on these signals mean "reload" and "drain".
        let signals = await UnixSignalsSequence(trapping: .sighup, .sigterm, .sigint)
        let runLog = try await Self.supervisorRunLog(stateDir: settings.stateDir, configuration: settings.runLog, logger: logger)
        let port = try ReservedPort.bind(host: server.host, port: server.port)
        var configuration = WorkerSupervisor.Configuration(workers: workers, arguments: CommandLine.arguments)
        configuration.watchdogLimit = settings.watchdog
        if let config = self.config {
            let snapshot = WorkerConfigSnapshot(source: config)
            configuration.prepare = { directory in
                try self.prepareWorkerConfig(snapshot, directory: directory, started: settings)
            }
            configuration.beforeStart = { directory in try snapshot.write(directory: directory) }
            configuration.beforeReload = { directory in
                await self.acceptWorkerConfig(snapshot, directory: directory, started: settings, logger: logger)
            }
        }
        configuration.drainDeadline = Self.drainDeadline(server.shutdownTimeout)
        let supervisor = WorkerSupervisor(configuration: configuration, port: port, logger: logger) { death in
            guard let service = runLog?.service else { return }
            // The dead worker's live runs get their terminal entry, so a client that resumes one is told.
            // A store write: on a thread of its own, not the supervisor's task.
            Thread {
                do {
                    let ended = try service.endOrphans(where: death.incarnation, excluding: false,
                                                       reason: "worker \(death.worker) died: \(death)")
                    if ended > 0 {
                        logger.notice("ended the live runs of a dead worker", metadata: [
                            "worker": "\(death.worker)", "pid": "\(death.pid)", "runs": "\(ended)"])
                    }
                } catch {
                    logger.error("cannot end the live runs of a dead worker", metadata: [
                        "worker": "\(death.worker)", "error": "\(error)"])
                }
            }.start()
        }
        let scheme = server.tls == nil ? "ws" : "wss"
        let address = port.address
        let shownHost = address.protocol == .inet6 ? "[\(address.ipAddress ?? server.host)]" : (address.ipAddress ?? server.host)
        logger.info("supervising workers", metadata: ["workers": "\(workers)", "address": "\(address)"])
        let status = try await supervisor.run(signals: signals) {
            print("agenthost listening on \(scheme)://\(shownHost):\(address.port ?? server.port)")
            fflush(nil)
        }
        await runLog?.service.shutdown()
        withExtendedLifetime(runLog?.lock) {}  // the state dir stays locked until every worker is gone
        if status != 0 { throw ExitCode(status) }
    }

    /// Before the first worker starts: the config file as this supervisor started with it, for its workers.
    private func prepareWorkerConfig(_ snapshot: WorkerConfigSnapshot, directory: String, started: ServeSettings)
        throws
    {
        let (bytes, checked) = try snapshot.stage(directory: directory) { try self.resolveSettings(configFile: $0) }
        // Workers must start as this process did: a file edited in the meantime could give them another address.
        let changed = ServeSettings.restartOnlyChanges(from: started, to: checked)
        guard changed.isEmpty else {
            throw ValidationError("the config file changed while the server started (\(changed.joined(separator: ", "))): "
                + "start it again")
        }
        try snapshot.accept(bytes, directory: directory, atStart: true)
    }

    /// How long a draining worker may take before it is killed: its close handshakes' time, and a margin.
    static func drainDeadline(_ shutdownTimeout: TimeAmount) -> Duration {
        .nanoseconds(shutdownTimeout.nanoseconds) + .seconds(5)
    }

    /// SIGHUP, before the workers get it: a good file becomes the one workers read (and workers started later
    /// too); a bad one is refused here, once, with the reason, and workers reload the one they had. Returns the
    /// accepted file's drain deadline.
    private func acceptWorkerConfig(_ snapshot: WorkerConfigSnapshot, directory: String, started: ServeSettings,
                                    logger: Logger) async -> Duration? {
        do {
            let (bytes, checked) = try snapshot.stage(directory: directory) { try self.resolveSettings(configFile: $0) }
            _ = try await self.makeServer(checked)  // the authenticator's keys and JWKS must load
            try snapshot.accept(bytes, directory: directory)
            logger.info("configuration accepted: every worker reloads it", metadata: ["file": "\(snapshot.source)"])
            ConfigReloader.warnAboutRestartOnly(ServeSettings.restartOnlyChanges(from: started, to: checked),
                                                logger: logger)
            return Self.drainDeadline(checked.server.shutdownTimeout)
        } catch {
            logger.error("configuration reload refused: the configuration in service stays", metadata: [
                "file": "\(snapshot.source)", "reason": "\(ConfigReloader.describe(error))",
            ])
            return nil
        }
    }

    /// With a state dir, the supervisor holds its lock for the workers and, before they start, ends the runs a
    /// previous server left live; later it ends those of each worker that dies. Without one, runs live in each
    /// worker's memory and die with it: nothing to end.
    private static func supervisorRunLog(stateDir: String?, configuration: RunLogConfiguration, logger: Logger)
        async throws -> (service: RunLogService, lock: StateDirectoryLockHolder?)?
    {
        guard let stateDir else { return nil }
        let lock = try RunLogSetup.lock(stateDir: stateDir, forWorkers: true, logger: logger)
        var configuration = configuration
        configuration.endOrphansAtStart = true
        let service = RunLogService(backend: SQLiteRunLogBackend(path: stateDir + "/runlog.sqlite", shared: true),
                                    configuration: configuration, logger: logger)
        await service.start()
        return (service, lock)
    }
}
