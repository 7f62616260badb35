import AgentHostCore
import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import UnixSignals

/// `agenthost serve --workers N`: owns the port and keeps N worker processes serving it.
///
/// **SO_REUSEPORT, not one inherited listening socket.** Each worker binds its own listening socket to the port
/// with SO_REUSEPORT, and the kernel hashes new connections over the listening sockets of the group. The
/// supervisor holds the port with a bound socket that never listens (`ReservedPort`): it takes no connection, but
/// it turns port 0 into one real port for every worker and keeps the port ours while a worker restarts.
/// One socket inherited by every worker (nginx's way) was tried first: its shared accept queue outlives a crashed
/// worker, but every worker's epoll then wakes for every connection, and SwiftNIO treats a readable listening
/// socket that yields no connection (a sibling took it) as a broken invariant (an assertion, fatal in debug
/// builds). SO_REUSEPORT has no such race and spreads connections evenly, whoever is awake. Its price: the
/// connections in a crashed worker's own accept queue (accepted by the kernel, not yet by the worker) are reset
/// with it, unless `net.ipv4.tcp_migrate_req = 1` (Linux 5.14) moves them to a sibling; new connections go to the
/// remaining workers at once. TLS is unchanged: it is per connection, in the worker that accepts it (each worker
/// loads the certificate itself and reloads it on SIGHUP).
///
/// A worker that dies is logged with its cause (exit status or signal, and the plugin callbacks its loops were in,
/// read from the `CallbackSlotRegion` it shared with us) and replaced after a `RestartBackoff` delay; the others
/// keep serving. A callback that blocks a loop for `watchdogLimit` gets its worker killed (SIGKILL) and replaced.
/// SIGHUP is passed to every worker (each reloads its plugins and TLS); SIGTERM and SIGINT drain every worker and
/// exit 0 once all of them did.
public final class WorkerSupervisor: Sendable {
    public struct Configuration: Sendable {
        public var workers: Int
        /// The command line each worker runs (the supervisor's own).
        public var arguments: [String]
        /// A callback running longer than this gets its worker killed; nil: no watchdog.
        public var watchdogLimit: Duration? = .seconds(10)
        public var backoff = RestartBackoff.Policy()
        /// How long a draining worker may take before it is killed: the server's shutdown timeout plus a margin.
        public var drainDeadline: Duration = .seconds(15)
        /// Called with the workers' private directory before the first worker starts (the command puts there the
        /// config its workers read); a throw stops the supervisor before any worker runs.
        public var prepare: @Sendable (_ directory: String) async throws -> Void = { _ in }
        /// Called before each worker process starts (the command writes the config files workers read again: a
        /// /tmp cleaner may have removed them since); a throw fails that start, which is retried with backoff.
        public var beforeStart: @Sendable (_ directory: String) throws -> Void = { _ in }
        /// Called on SIGHUP before the workers get it (the command checks the config file there and, if it is
        /// good, puts it where workers, and workers started later, read it). Returns the accepted configuration's
        /// drain deadline, or nil to keep the one in service.
        public var beforeReload: @Sendable (_ directory: String) async -> Duration? = { _ in nil }

        public init(workers: Int, arguments: [String]) {
            self.workers = workers
            self.arguments = arguments
        }
    }

    private let configuration: Configuration
    private let port: ReservedPort
    private let logger: Logger
    /// Called for every worker that died while serving (see `workerDied`).
    private let onWorkerDeath: @Sendable (WorkerDeath) -> Void

    public init(configuration: Configuration, port: ReservedPort, logger: Logger,
                onWorkerDeath: @escaping @Sendable (WorkerDeath) -> Void = { _ in }) {
        self.configuration = configuration
        self.port = port
        self.logger = logger
        self.onWorkerDeath = onWorkerDeath
    }

    enum Event: Sendable {
        case ready(Int, pid_t)
        case exited(Int, pid_t, WorkerExit)
        case signal(UnixSignal)
        case respawn(Int)
        case watchdogTick
        case drainDeadline
    }

    /// One worker slot.
    struct Slot: Sendable {
        var process: WorkerProcess?
        var ready = false
        var backoff: RestartBackoff
        var restarts = 0
        var lastExit: String?
        /// A reload happened while this worker was starting: it gets SIGHUP once it serves.
        var reloadPending = false
        /// The watchdog's reason for killing the current process.
        var watchdogVerdict: (callback: BusyCallback, seconds: Double)?
    }

    /// Runs until the workers were drained (SIGTERM, SIGINT) or could not start; returns the exit status.
    /// `signals` must trap SIGHUP, SIGTERM and SIGINT, and be created before anything else runs.
    public func run(signals: UnixSignalsSequence, onReady: @escaping @Sendable () -> Void) async throws -> Int32 {
        let directory = try Self.makePrivateDirectory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let status: Int32
        do {
            status = try await self.supervise(signals: signals, directory: directory, group: group, onReady: onReady)
        } catch {
            try? await group.shutdownGracefully()
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
        return status
    }

    private func supervise(signals: UnixSignalsSequence, directory: String, group: any EventLoopGroup,
                           onReady: @escaping @Sendable () -> Void) async throws -> Int32 {
        let (events, post) = AsyncStream.makeStream(of: Event.self)
        let state = SupervisorState(slots: (0..<self.configuration.workers).map { _ in
            Slot(backoff: RestartBackoff(policy: self.configuration.backoff))
        })
        let table = try await PeerAdminServer.start(
            path: WorkerContext.supervisorSocketPath(directory: directory), group: group
        ) { question in
            question == "workers" ? await state.table() : ""
        }
        defer { table.close() }

        let background = Task {
            await withDiscardingTaskGroup { tasks in
                tasks.addTask {
                    for await signal in signals { post.yield(.signal(signal)) }
                }
                if let limit = self.configuration.watchdogLimit {
                    let tick = min(Duration.seconds(1), limit / 4)
                    tasks.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: tick)
                            post.yield(.watchdogTick)
                        }
                    }
                }
            }
        }
        defer { background.cancel() }

        try await self.configuration.prepare(directory)
        var drainDeadline = self.configuration.drainDeadline  // a reloaded shutdown_timeout_ms moves it
        for index in 0..<self.configuration.workers {
            try await self.start(index, directory: directory, state: state, post: post)
        }
        var serving = false
        var draining = false
        var cleanDrain = true
        var portHeld = true
        for await event in events {
            switch event {
            case .ready(let index, let pid):
                guard await state.markReady(index, pid: pid) else { continue }
                self.logger.info("worker ready", metadata: ["worker": "\(index)", "pid": "\(pid)"])
                if let process = await state.takePendingReload(index) {
                    self.logger.info("SIGHUP for a worker that started during a reload", metadata: ["worker": "\(index)"])
                    process.signal(SIGHUP)
                }
                if !serving, await state.allReady {
                    serving = true
                    onReady()
                }
            case .exited(let index, let pid, let exit):
                guard let (process, slot) = await state.processExited(index, pid: pid) else { continue }
                let running = process.memory.region.busyCallbacks()
                process.memory.release()
                let death = WorkerDeath(worker: index, pid: pid, incarnation: process.incarnation, exit: exit,
                                        runningCallbacks: running,
                                        watchdog: slot.watchdogVerdict)
                if draining {
                    cleanDrain = cleanDrain && (exit.isCleanExit || !slot.ready)
                    self.logger.info("worker stopped", metadata: ["worker": "\(index)", "pid": "\(pid)", "exit": "\(exit)"])
                    // Killed at the drain deadline (or crashed while draining): its live runs end now too.
                    if !exit.isCleanExit { self.workerDied(death) }
                    if await state.noneRunning { return cleanDrain ? 0 : 1 }
                    continue
                }
                if !serving && !slot.ready {
                    // A worker that cannot even start (a config it rejects, a plugin directory it cannot read)
                    // would fail the same way again: stop, as a single process would.
                    self.logger.critical("worker could not start; stopping", metadata: [
                        "worker": "\(index)", "pid": "\(pid)", "cause": "\(death)"])
                    draining = true
                    cleanDrain = false
                    await state.signalAll(SIGTERM)
                    self.releasePort(&portHeld)
                    if await state.noneRunning { return 1 }
                    self.scheduleDrainDeadline(drainDeadline, post: post)
                    continue
                }
                let delay = await state.scheduleRespawn(index, uptime: process.startedAt.duration(to: .now),
                                                        cause: death.description)
                self.logger.error("worker died", metadata: [
                    "worker": "\(index)", "pid": "\(pid)", "cause": "\(death)",
                    "respawn_in_s": "\(Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)"])
                self.workerDied(death)
                Task {
                    try? await Task.sleep(for: delay)
                    post.yield(.respawn(index))
                }
            case .respawn(let index):
                guard !draining else { continue }
                do {
                    try await self.start(index, directory: directory, state: state, post: post)
                } catch {
                    self.logger.error("cannot start a worker; trying again", metadata: ["worker": "\(index)", "error": "\(error)"])
                    let delay = await state.scheduleRespawn(index, uptime: .zero, cause: "\(error)")
                    Task {
                        try? await Task.sleep(for: delay)
                        post.yield(.respawn(index))
                    }
                }
            case .signal(let signal) where signal == .sighup:
                guard !draining else { continue }
                if let deadline = await self.configuration.beforeReload(directory) { drainDeadline = deadline }
                self.logger.info("SIGHUP: every worker reloads its plugins and TLS (and config file, if any)")
                await state.reloadAll()
            case .signal:
                guard !draining else { continue }
                draining = true
                self.logger.info("draining every worker", metadata: ["signal": "\(event)"])
                self.releasePort(&portHeld)
                await state.signalAll(SIGTERM)
                if await state.noneRunning { return 0 }
                self.scheduleDrainDeadline(drainDeadline, post: post)
            case .watchdogTick:
                guard !draining, let limit = self.configuration.watchdogLimit else { continue }
                for (index, process, busy) in await state.stuckCallbacks(limit: limit) {
                    let seconds = Double(CoarseClock.nanoseconds() &- busy.startedNanoseconds) / 1e9
                    self.logger.error("watchdog: a plugin callback blocked an event loop past the limit; killing its worker", metadata: [
                        "worker": "\(index)", "pid": "\(process.pid)", "plugin": "\(busy.endpoint)",
                        "callback": "\(busy.callback.abiName)", "blocked_s": "\((seconds * 10).rounded() / 10)",
                        "limit_s": "\(limit)"])
                    await state.setWatchdogVerdict(index, callback: busy, seconds: seconds)
                    process.signal(SIGKILL)
                }
            case .drainDeadline:
                self.logger.warning("workers still draining past the deadline: killing them")
                cleanDrain = false
                await state.signalAll(SIGKILL)
            }
        }
        return 1
    }

    /// The hook for the host-owned run log: a worker died while serving, and the runs it had live need their
    /// terminal entry. Called once per death, before the respawn, on the supervisor's task.
    func workerDied(_ death: WorkerDeath) {
        self.onWorkerDeath(death)
    }

    private func start(_ index: Int, directory: String, state: SupervisorState,
                       post: AsyncStream<Event>.Continuation) async throws {
        try self.configuration.beforeStart(directory)
        let process = try WorkerProcess.start(
            index: index, count: self.configuration.workers, directory: directory,
            port: self.port.address.port ?? 0,
            arguments: self.configuration.arguments
        ) { pid, report in
            switch report {
            case .ready: post.yield(.ready(index, pid))
            case .exited(let exit): post.yield(.exited(index, pid, exit))
            }
        }
        await state.started(index, process: process)
    }

    private func scheduleDrainDeadline(_ deadline: Duration, post: AsyncStream<Event>.Continuation) {
        Task {
            try? await Task.sleep(for: deadline)
            post.yield(.drainDeadline)
        }
    }

    private func releasePort(_ held: inout Bool) {
        guard held else { return }
        held = false
        self.port.release()
    }

    static func makePrivateDirectory() throws -> String {
        var template = Array((URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("agenthost-workers-XXXXXX").path).utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw WorkerSpawner.Failure(description: "cannot make the workers' directory: errno \(errno)")
        }
        return String(cString: made)
    }
}
