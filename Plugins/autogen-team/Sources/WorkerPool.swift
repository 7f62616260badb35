import AgentHostAgentSDK
import AgentHostPluginSDK
import Foundation
import Synchronization

/// The pool of AutoGen worker processes of one plugin instance. Each run goes to the least-loaded live worker; a
/// worker that exits (crash, kill) is replaced (at once after a quiet spell, with a growing delay when crashes
/// follow each other: CrashBackoff), and one that stops answering pings, and writes nothing else either, for
/// `hangTimeout` is killed (its runs end
/// with an error) and replaced. The host never sees any of it: only the runs on that worker end, with
/// `completion {status: "error"}`.
final class WorkerPool: Sendable {
    struct Settings: Sendable {
        var python: String
        var script: String
        var size: Int
        var hangTimeoutSeconds: Double
        /// How long a new run waits for a live worker while all are being (re)started.
        var startTimeoutSeconds: Double
        /// Team configs sent to every worker when it starts, by key (the route pattern).
        var teams: [String: String]
        /// Limits on the images of a client's task, checked by the workers before decoding (image_limits.py).
        var maxImageBytes = 5 << 20
        var maxImagePixels = 16 << 20
        var maxTaskImagePixels = 32 << 20
        var maxWorkerImagePixels = 64 << 20
        /// A run's events waiting in the host for the client (RunEvents): over this, the run ends with an error.
        var maxQueuedEventBytes = 32 << 20
        /// The longest line a worker may write (max_worker_line_bytes): a longer one gets the worker killed.
        var maxWorkerLineBytes = 320 << 20
        /// All runs' events waiting in the host together (QueuedEventTotal): over this, the run with the most
        /// queued ends with an error.
        var maxQueuedEventBytesTotal = (256 << 20) + (320 << 20)

        /// The worker script's arguments.
        var workerArguments: [String] {
            ["--max-image-bytes", "\(self.maxImageBytes)", "--max-image-pixels", "\(self.maxImagePixels)",
             "--max-task-image-pixels", "\(self.maxTaskImagePixels)",
             "--max-worker-image-pixels", "\(self.maxWorkerImagePixels)"]
        }
    }

    private let settings: Settings
    private let workers = Mutex<[WorkerProcess]>([])
    private let nextRunID = Atomic<Int>(1)
    private let stopping = Atomic<Bool>(false)
    /// Workers in a row that died before they were ready (Python or AutoGen missing, a broken venv).
    private let failedStarts = Atomic<Int>(0)
    private let crashBackoff = Mutex(CrashBackoff())
    private let log: PluginLog
    private let queuedTotal: QueuedEventTotal
    /// The longest command a worker reads (MAX_COMMAND_BYTES in the worker): a longer line is dropped there, and
    /// its run would never hear back. Only a server configured for messages this large can receive such a task.
    static let maxCommandBytes = 64 << 20

    init(settings: Settings, log: @escaping @Sendable (LogLevel, String) -> Void) throws {
        self.settings = settings
        self.log = PluginLog(log)
        self.queuedTotal = QueuedEventTotal(max: settings.maxQueuedEventBytesTotal)
        do {
            for _ in 0..<settings.size { try self.spawn() }
            try self.waitUntilOneIsReady()
        } catch {
            self.shutdown()
            self.log.close()
            throw error
        }
        let monitor = Thread { [weak self] in
            while let pool = self, !pool.stopping.load(ordering: .relaxed) {
                pool.checkLiveness()
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
        monitor.name = "autogen-pool-monitor"
        monitor.start()
    }

    /// A run on a worker: its events, and how to stop or answer it.
    struct Handle: Sendable {
        let id: String
        let worker: WorkerProcess
        let events: RunEvents

        func stop(reason: String) {
            self.worker.send("{\"op\":\"stop\",\"run\":\"\(self.id)\",\"reason\":\(JSONText.quoted(reason))}")
        }

        func answer(requestID: String, response: String) {
            self.worker.send("{\"op\":\"input\",\"run\":\"\(self.id)\",\"request_id\":\(JSONText.quoted(requestID)),"
                + "\"response\":\(JSONText.quoted(response))}")
        }
    }

    /// Starts a run of the team `teamKey` (configured) or `teamJSON` (a client's, when allowed) on `taskJSON`.
    func start(taskJSON: String, teamKey: String?, teamJSON: String?) async throws -> Handle {
        let id = "r\(self.nextRunID.wrappingAdd(1, ordering: .relaxed).oldValue)"
        let team = teamJSON.map { "\"config\":\($0)" } ?? "\"key\":\(JSONText.quoted(teamKey ?? ""))"
        let command = "{\"op\":\"start\",\"run\":\"\(id)\",\"task\":\(taskJSON),\(team)}"
        guard command.utf8.count < Self.maxCommandBytes else {
            throw AgentRunError("invalid task: larger than the AutoGen workers take (\(Self.maxCommandBytes) bytes)")
        }
        // Least-loaded first; if that one just died, the next. While every worker is being replaced (a crash in a
        // pool of one), wait for a replacement rather than failing the run.
        let deadline = ContinuousClock.now + .milliseconds(Int(self.settings.startTimeoutSeconds * 1000))
        repeat {
            let candidates = self.workers.withLock { $0.filter(\.isAlive).sorted { $0.load < $1.load } }
            for worker in candidates {
                if let events = worker.start(runID: id, command: command) {
                    return Handle(id: id, worker: worker, events: events)
                }
            }
            try await Task.sleep(for: .milliseconds(10))
        } while ContinuousClock.now < deadline && !self.stopping.load(ordering: .relaxed)
        throw AgentRunError("no AutoGen worker is available: all \(self.settings.size) are (re)starting "
            + "(see the server log)")
    }

    func shutdown() {
        self.stopping.store(true, ordering: .relaxed)
        for worker in self.workers.withLock({ $0 }) { worker.kill(reason: "plugin dropped") }
    }

    // MARK: Workers

    /// Loading waits for the first worker to import AutoGen and load every configured team (a second or two): a
    /// set-up that cannot run a team (no AutoGen for that Python, a broken venv, a team config AutoGen refuses)
    /// refuses the plugin with a message saying which, and on a hot reload the version already serving keeps
    /// serving.
    private func waitUntilOneIsReady() throws {
        let deadline = Date().addingTimeInterval(max(self.settings.startTimeoutSeconds, 1))
        while Date() < deadline {
            for worker in self.workers.withLock({ $0 }) where worker.becameReady {
                let report = worker.teamReport
                if let (route, error) = report.errors.min(by: { $0.key < $1.key }) {
                    self.shutdown()
                    throw AgentRunError("route \(route): AutoGen cannot load its team: \(error)")
                }
                if report.loaded.isSuperset(of: self.settings.teams.keys) { return }
            }
            if self.failedStarts.load(ordering: .relaxed) >= self.settings.size {
                break  // every worker died before it was ready
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        self.shutdown()
        throw AgentRunError("no AutoGen worker became ready: check that \(self.settings.python) runs "
            + "\(self.settings.script) with autogen-agentchat installed (the worker's error is in the server log)")
    }

    private func spawn() throws {
        let log = self.log
        let worker = try WorkerProcess(
            python: self.settings.python, script: self.settings.script, arguments: self.settings.workerArguments,
            maxQueuedBytes: self.settings.maxQueuedEventBytes, queuedTotal: self.queuedTotal,
            maxLineBytes: self.settings.maxWorkerLineBytes,
            onExit: { [weak self] dead in self?.replace(dead) },
            onBroken: { reason in log(.error, "AutoGen worker \(reason): killing it as broken") },
            // One log line per stderr line; the host escapes its control characters, as for every plugin's log text.
            onStderrLine: { pid, line in log(.warning, "AutoGen worker pid \(pid): \(line)") })
        for (key, config) in self.settings.teams {
            worker.send("{\"op\":\"team\",\"key\":\(JSONText.quoted(key)),\"config\":\(config)}")
        }
        self.workers.withLock { $0.append(worker) }
    }

    private func replace(_ dead: WorkerProcess) {
        self.workers.withLock { $0.removeAll { $0 === dead } }
        guard !self.stopping.load(ordering: .relaxed) else { return }
        // A worker that died before it was ready will die again: back off (0.1 s doubling to 30 s) instead of a
        // respawn loop that burns a core and floods the log. One that crashed (or was killed) while serving waits
        // as CrashBackoff says.
        let failures = dead.becameReady ? 0 : self.failedStarts.wrappingAdd(1, ordering: .relaxed).newValue
        if dead.becameReady { self.failedStarts.store(0, ordering: .relaxed) }
        let delay: Double
        if failures == 0 {
            let now = ProcessInfo.processInfo.systemUptime
            delay = self.crashBackoff.withLock { $0.delay(afterCrashAt: now) }
            self.log(.warning, delay == 0 ? "AutoGen worker pid \(dead.pid) exited; starting a replacement"
                : "AutoGen worker pid \(dead.pid) exited soon after another crash; next start in \(delay) s")
        } else {
            delay = min(30, 0.1 * pow(2, Double(min(failures - 1, 10))))
            self.log(.warning, "AutoGen worker pid \(dead.pid) exited before it was ready (\(failures) in a row: is "
                + "AutoGen installed for \(self.settings.python)? see its stderr); next start in \(delay) s")
        }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        // Keep trying while the plugin lives: a pool that silently shrank would fail every run later.
        var attempt = 0
        while !self.stopping.load(ordering: .relaxed) {
            do {
                try self.spawn()
                return
            } catch {
                attempt += 1
                self.log(.warning, "cannot start a replacement AutoGen worker (attempt \(attempt)): \(error)")
                Thread.sleep(forTimeInterval: min(30, 0.1 * pow(2, Double(min(attempt, 10)))))
            }
        }
    }

    private func checkLiveness() {
        let now = ProcessInfo.processInfo.systemUptime
        for worker in self.workers.withLock({ $0 }) where worker.isAlive {
            if !worker.checkAlive(now: now, timeout: self.settings.hangTimeoutSeconds) {
                self.log(.warning, "AutoGen worker pid \(worker.pid) did not answer a ping for "
                    + "\(self.settings.hangTimeoutSeconds) s: killing it")
                worker.kill(reason: "stopped answering for \(self.settings.hangTimeoutSeconds) s")
            }
        }
    }
}
