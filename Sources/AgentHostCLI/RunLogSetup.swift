import AgentHostPlugins
import AgentHostRunLog
import ArgumentParser
import Logging

/// The server's run log: an SQLite store in the state dir (locked against a second server), or memory without one.
struct RunLogSetup {
    let service: RunLogService
    /// Held for the life of the server.
    let lock: StateDirectoryLock?

    /// - Parameter lockHeldByParent: a supervisor holds the state dir's lock (and ends orphaned runs) for its
    ///   worker processes.
    static func start(stateDir: String?, configuration: RunLogConfiguration, lockHeldByParent: Bool = false,
                      logger: Logger) async throws -> RunLogSetup {
        var configuration = configuration
        let backend: any RunLogBackend
        var lock: StateDirectoryLock?
        if let stateDir {
            if lockHeldByParent {
                configuration.endOrphansAtStart = false
            } else {
                lock = try Self.lock(stateDir: stateDir, logger: logger)
            }
            // A worker's siblings write the same file: only then may a log exist that this process has not seen.
            backend = SQLiteRunLogBackend(path: stateDir + "/runlog.sqlite", shared: lockHeldByParent)
        } else {
            logger.info("no state_dir: runs are kept in memory and do not survive a restart")
            backend = MemoryRunLogBackend()
            // Memory is not a disk: unless the operator chose a total, keep what the replay buffers had.
            if configuration.retention.maxTotalBytes == RunLogRetention().maxTotalBytes {
                configuration.retention.maxTotalBytes = max(RunLogRetention.memoryDefaultTotalBytes,
                                                            configuration.retention.maxBytesPerLog)
            }
            if configuration.retention.maxEndedBytesPerOwner == RunLogRetention().maxEndedBytesPerOwner {
                configuration.retention.maxEndedBytesPerOwner = max(RunLogRetention.memoryDefaultBytesPerOwner,
                                                                    configuration.retention.maxBytesPerLog)
            }
        }
        let service = RunLogService(backend: backend, configuration: configuration, logger: logger)
        await service.start()
        HostFunctionTable.install(runLog: service)
        return RunLogSetup(service: service, lock: lock)
    }

    /// The state dir's lock, for this server (or a supervisor and its workers). A dir another server holds refuses
    /// the start; a dir that cannot be written is logged and yields no lock: the store fails the same way, and the
    /// service says so and keeps runs in memory.
    static func lock(stateDir: String, logger: Logger) throws -> StateDirectoryLock? {
        do {
            return try StateDirectoryLock(directory: stateDir)
        } catch let failure where failure.isHeld {
            throw ValidationError(failure.description)
        } catch {
            logger.error("the state dir cannot be written: runs are kept in memory until it can",
                         metadata: ["state_dir": "\(stateDir)", "error": "\(error)"])
            return nil
        }
    }

    func shutdown() async {
        await self.service.shutdown()
    }
}
