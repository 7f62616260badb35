import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One Python worker process: spawned with pipes for stdin, stdout and stderr, read by dedicated threads (blocking
/// reads of a pipe have no place on an event loop or in the cooperative pool), written under a lock. Its stderr
/// (tracebacks, which can quote client text) reaches the host log line by line through `onStderrLine` and the
/// plugin's log call (whose text the host escapes), never inherited verbatim.
final class WorkerProcess: Sendable {
    let pid: pid_t
    private let input: Int32
    private let output: Int32
    private let state = Mutex(State())
    /// Separate from `state`: a write can block on a full pipe, and the reader thread must still get `state`.
    private let writeLock = Mutex(())
    private let onExit: @Sendable (WorkerProcess) -> Void
    /// Told why the worker is killed as broken (for the log), on the reader thread.
    private let onBroken: @Sendable (String) -> Void
    /// Each run's budget of events waiting in the host (RunEvents).
    private let maxQueuedBytes: Int
    /// The pool's budget of queued events, over all its runs.
    private let queuedTotal: QueuedEventTotal?
    /// The longest line the worker may write: a longer one means a broken worker, which is killed.
    private let maxLineBytes: Int

    struct State {
        var runs: [String: RunEvents] = [:]
        var alive = true
        var lastPong = 0
        var lastPing = 0
        var pingSentAt: Double = 0
        /// When the reader last got bytes from the worker: a sign of life as good as a pong, which can wait behind
        /// megabytes of events in the pipe while the reader works through them.
        var lastProgress: Double = 0
        /// Why the plugin killed the worker, if it did.
        var killReason: String?
        /// The worker said it is ready (AutoGen imported): a worker that dies before is a broken set-up, not a crash.
        var ready = false
        /// Configured teams the worker loaded, and the ones it could not (with why), by key.
        var teamsLoaded: Set<String> = []
        var teamErrors: [String: String] = [:]
    }

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// - Parameters:
    ///   - arguments: passed to the script after its path.
    ///   - onStderrLine: each line the worker writes to stderr (raw), on a reader thread.
    init(python: String, script: String, arguments extra: [String] = [], maxQueuedBytes: Int = 32 << 20,
         queuedTotal: QueuedEventTotal? = nil,
         maxLineBytes: Int = 320 << 20, onExit: @escaping @Sendable (WorkerProcess) -> Void,
         onBroken: @escaping @Sendable (String) -> Void = { _ in },
         onStderrLine: @escaping @Sendable (pid_t, String) -> Void) throws
    {
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        var errorsFromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0 else { throw SpawnError(description: "pipe failed: \(String(cString: strerror(errno)))") }
        guard pipe(&fromChild) == 0 else {
            toChild.forEach { close($0) }
            throw SpawnError(description: "pipe failed: \(String(cString: strerror(errno)))")
        }
        guard pipe(&errorsFromChild) == 0 else {
            (toChild + fromChild).forEach { close($0) }
            throw SpawnError(description: "pipe failed: \(String(cString: strerror(errno)))")
        }
        // Close-on-exec, so other children of the host (other workers) do not inherit these ends: a worker must
        // see EOF on stdin when the plugin goes away. (Glibc's pipe2 is not visible to Swift without _GNU_SOURCE.)
        for fd in toChild + fromChild + errorsFromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errorsFromChild[1], 2)
        Self.closeInheritedDescriptors(&actions)
        let arguments = [python, "-u", script] + extra
        // The host's environment (API keys for real model clients reach the worker), unbuffered output.
        var environ = ProcessInfo.processInfo.environment
        environ["PYTHONUNBUFFERED"] = "1"
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environ.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, python, &actions, nil, argv, envp)
        close(toChild[0])
        close(fromChild[1])
        close(errorsFromChild[1])
        guard status == 0 else {
            close(toChild[1])
            close(fromChild[0])
            close(errorsFromChild[0])
            throw SpawnError(description: "cannot start \(python): \(String(cString: strerror(status)))")
        }
        self.pid = pid
        self.input = toChild[1]
        self.output = fromChild[0]
        self.onExit = onExit
        self.maxQueuedBytes = maxQueuedBytes
        self.queuedTotal = queuedTotal
        self.maxLineBytes = maxLineBytes
        self.onBroken = onBroken
        let thread = Thread { [self] in self.readLoop() }
        thread.name = "autogen-worker-\(pid)"
        thread.start()
        // Its own thread: stderr must keep draining while the protocol reader waits (a full stderr pipe would
        // block the worker mid-traceback). Lines of a worker that never writes a newline come in 8 KiB pieces.
        let errors = errorsFromChild[0]
        let errorThread = Thread { [pid = self.pid] in
            PipeLines.readText(errors, maxLineBytes: 8 << 10) { onStderrLine(pid, $0) }
            close(errors)
        }
        errorThread.name = "autogen-worker-\(pid)-stderr"
        errorThread.start()
    }

    /// The worker must not inherit the host's descriptors: NIO's sockets (client connections, the listener) are
    /// not close-on-exec, and a worker holding a client's socket keeps that TCP connection open after the host
    /// closed it (the client never sees EOF). glibc 2.34+ closes everything from 3 up in the child; the function is
    /// a GNU extension Swift's Glibc module does not show, so it is looked up at run time. Without it, every
    /// descriptor open now (from /proc/self/fd) gets a close action.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            if closeFrom(&actions, 3) == 0 { return }
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for fd in open where fd > 2 && fcntl(fd, F_GETFD) >= 0 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }

    var isAlive: Bool { self.state.withLock { $0.alive } }
    var becameReady: Bool { self.state.withLock { $0.ready } }
    var teamReport: (loaded: Set<String>, errors: [String: String]) {
        self.state.withLock { ($0.teamsLoaded, $0.teamErrors) }
    }
    var load: Int { self.state.withLock { $0.runs.count } }

    /// Registers a run and sends its start line. Nil if the worker is gone.
    func start(runID: String, command: String) -> RunEvents? {
        let events = RunEvents(maxQueuedBytes: self.maxQueuedBytes, total: self.queuedTotal)
        let added = self.state.withLock { state -> Bool in
            guard state.alive else { return false }
            state.runs[runID] = events
            return true
        }
        guard added, self.send(command) else {
            _ = self.state.withLock { $0.runs.removeValue(forKey: runID) }
            return nil
        }
        return events
    }

    /// Writes one JSON line. False if the worker is gone.
    @discardableResult
    func send(_ line: String) -> Bool {
        var bytes = Array((line + "\n").utf8)
        guard self.isAlive else { return false }
        return self.writeLock.withLock { _ -> Bool in
            // Under the lock: lines from different runs must not interleave. A write blocks only while the worker
            // stops reading; the liveness check then kills it, and the write fails with EPIPE.
            guard self.isAlive else { return false }
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeMutableBytes { write(self.input, $0.baseAddress! + offset, $0.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }

    /// Liveness: sends a ping, and reports whether the previous one went unanswered, and nothing else came from the
    /// worker either, for longer than `timeout`.
    func checkAlive(now: Double, timeout: Double) -> Bool {
        let (overdue, ping) = self.state.withLock { state -> (Bool, Int?) in
            if state.lastPing > state.lastPong {
                return (now - max(state.pingSentAt, state.lastProgress) > timeout, nil)
            }
            state.lastPing += 1
            state.pingSentAt = now
            return (false, state.lastPing)
        }
        if let ping { self.send("{\"op\":\"ping\",\"n\":\(ping)}") }
        return !overdue
    }

    func kill(reason: String) {
        self.state.withLock { $0.killReason = $0.killReason ?? reason }
        _ = Glibc.kill(self.pid, SIGKILL)
    }

    func forget(runID: String) {
        _ = self.state.withLock { $0.runs.removeValue(forKey: runID) }
    }

    // MARK: Reading

    private func readLoop() {
        // Lines are capped (generously: a result line with the largest task's images fits), so a worker that
        // writes without a newline cannot grow the host's buffer without bound.
        PipeLines.read(self.output, maxLineBytes: self.maxLineBytes, partialLastLine: false, onRead: { _ in
            let now = ProcessInfo.processInfo.systemUptime
            self.state.withLock { $0.lastProgress = now }
        }, onOverlong: {
            let reason = "wrote a line longer than \(self.maxLineBytes) bytes (max_worker_line_bytes)"
            self.onBroken("pid \(self.pid) " + reason)
            self.kill(reason: reason)
        }) { self.dispatch($0) }
        self.exited()
    }

    private func dispatch(_ line: UnsafeBufferPointer<UInt8>) {
        switch WorkerLine.parse(line) {
        case .run(let id, let event):
            let events = self.state.withLock { state in
                event.isTerminal ? state.runs.removeValue(forKey: id) : state.runs[id]
            }
            // Over its budget, the run ends now (the route stops it on the worker: a write from this thread could
            // block on a worker that is itself blocked writing to us); its later lines find no run and are dropped.
            if events?.push(event, bytes: line.count) == .overflowed {
                _ = self.state.withLock { $0.runs.removeValue(forKey: id) }
            }
        case .pong(let n):
            self.state.withLock { $0.lastPong = max($0.lastPong, n) }
        case .ready:
            self.state.withLock { $0.ready = true }
        case .team(let key, nil):
            _ = self.state.withLock { $0.teamsLoaded.insert(key) }
        case .team(let key, let error?):
            self.state.withLock { $0.teamErrors[key] = error }
        case nil:
            break
        }
    }

    private func exited() {
        let (runs, killReason) = self.state.withLock { state in
            state.alive = false
            defer { state.runs = [:] }
            return (Array(state.runs.values), state.killReason)
        }
        // Under the write lock, and `send` checks `alive` under it too: no write can reach a closed (or reused)
        // descriptor number.
        self.writeLock.withLock { _ in _ = close(self.input) }
        close(self.output)
        var status: Int32 = 0
        _ = waitpid(self.pid, &status, 0)
        // The replacement first: a client told of the failure may start its next run at once.
        self.onExit(self)
        let reason = killReason.map { "the AutoGen worker (pid \(self.pid)) \($0) and was killed" }
            ?? "the AutoGen worker (pid \(self.pid)) exited while running this task (status \(status))"
        for run in runs {
            _ = run.push(.workerLost(reason: reason), bytes: 0)
            run.finish()
        }
    }
}
