import AgentHostPlugins
import AgentHostRunLog
import ArgumentParser
import Logging

/// The server's run log: an SQLite store in the state dir (locked against a second server), or memory without one.
struct RunLogSetup {
    let service: RunLogService
    /// Held for the life of the server.
    let lock: StateDirectoryLockHolder?

    /// - Parameter lockHeldByParent: a supervisor holds the state dir's lock (and ends orphaned runs) for its
    ///   worker processes.
    static func start(stateDir: String?, configuration: RunLogConfiguration, lockHeldByParent: Bool = false,
                      logger: Logger) async throws -> RunLogSetup {
        var configuration = configuration
        let backend: any RunLogBackend
        var lock: StateDirectoryLockHolder?
        if let stateDir {
            if lockHeldByParent {
                configuration.endOrphansAtStart = false
                // A worker's siblings write the same file: only then may a log exist that this process has not seen.
                backend = SQLiteRunLogBackend(path: stateDir + "/runlog.sqlite", shared: true)
            } else {
                let holder = try Self.lock(stateDir: stateDir, logger: logger)
                lock = holder
                backend = SQLiteRunLogBackend(path: stateDir + "/runlog.sqlite", beforeOpen: { try holder.acquire() })
            }
        } else {
            logger.info("no state_dir: runs are kept in memory and do not survive a restart")
            backend = MemoryRunLogBackend()
            // (Its totals' memory defaults were applied with the settings: `ServeSettings.applyMemoryDefaults`.)
        }
        let service = RunLogService(backend: backend, configuration: configuration, logger: logger)
        await service.start()
        HostFunctionTable.install(runLog: service)
        return RunLogSetup(service: service, lock: lock)
    }

    /// The state dir's lock, for this server (or a supervisor and its workers). A dir another server holds, or one
    /// that belongs to another user or that others may write, refuses the start; a dir that cannot be written is
    /// logged: the holder takes the lock before the store is opened, so until it can, runs are kept in memory (the
    /// service says so and retries). `forWorkers`: a supervisor, whose workers open the store on its lock and cannot
    /// wait for one it does not have: the lock must be taken now.
    static func lock(stateDir: String, forWorkers: Bool = false, logger: Logger) throws -> StateDirectoryLockHolder {
        let holder = StateDirectoryLockHolder(directory: stateDir)
        do {
            try holder.acquire()
        } catch let failure as StateDirectoryLock.Failure where failure.refusesStart {
            throw ValidationError(failure.description)
        } catch where forWorkers {
            throw ValidationError("\(error): with --workers the state dir must be writable at start (its lock keeps "
                + "another server off the store the workers share); fix it, or run without state_dir")
        } catch {
            logger.error("the state dir cannot be written: runs are kept in memory until it can",
                         metadata: ["state_dir": "\(stateDir)", "error": "\(error)"])
        }
        return holder
    }

    func shutdown() async {
        await self.service.shutdown()
    }
}
