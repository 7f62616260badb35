import AgentHostCore
import Foundation
import Glibc

/// What a worker process was handed by its supervisor, and its side of their contract: descriptors 3 (its end of
/// a control socket pair) and 4 (the callback slots' file), and the variables below. Set by `WorkerSupervisor`
/// only: an operator who sets `AGENTHOST_WORKER_INDEX` by hand gets an error, not a half-started worker.
public struct WorkerContext: Sendable {
    static let indexVariable = "AGENTHOST_WORKER_INDEX"
    static let countVariable = "AGENTHOST_WORKER_COUNT"
    static let directoryVariable = "AGENTHOST_WORKER_DIR"
    static let portVariable = "AGENTHOST_WORKER_PORT"
    static let incarnationVariable = "AGENTHOST_WORKER_INCARNATION"
    static let controlDescriptor: CInt = 3
    static let slotsDescriptor: CInt = 4

    /// This worker's slot, 0 ..< count (a respawned worker takes the slot of the one it replaces).
    public let index: Int
    public let count: Int
    /// The supervisor's private (0700) directory: the workers' and the supervisor's admin sockets.
    public let directory: String
    /// The port to listen on with SO_REUSEPORT (the supervisor's: the configured one, or the one port 0 got).
    public let port: Int
    /// This process's writer incarnation in the run log, chosen by the supervisor: when this worker dies, the
    /// supervisor ends the live logs written under it.
    public let incarnation: String
    let control: CInt

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The worker context of this process, or nil when it is not a worker. Adopts the shared callback slots
    /// (`CallbackWatch`), makes the inherited descriptors close-on-exec (a plugin's child process must not keep the
    /// control socket open after this worker died: the supervisor would not see it die), and removes the variables
    /// from the environment for the same reason.
    public static func adoptFromEnvironment() throws -> WorkerContext? {
        let environment = ProcessInfo.processInfo.environment
        guard let indexText = environment[Self.indexVariable] else { return nil }
        guard let index = Int(indexText), let count = environment[Self.countVariable].flatMap(Int.init),
            (0..<count).contains(index), let directory = environment[Self.directoryVariable],
            let port = environment[Self.portVariable].flatMap(Int.init),
            let incarnation = environment[Self.incarnationVariable]
        else {
            throw Failure(description: "\(Self.indexVariable) is set: this process was not started as a worker by `agenthost serve --workers N` (unset it)")
        }
        var domain: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(Self.controlDescriptor, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0, domain == AF_UNIX else {
            throw Failure(description: "\(Self.indexVariable) is set but descriptor 3 is not a control socket: workers are started by `agenthost serve --workers N` only")
        }
        for fd in [Self.controlDescriptor, Self.slotsDescriptor] {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        let region: CallbackSlotRegion
        do {
            region = try SharedSlotMemory.map(fd: Self.slotsDescriptor)
        } catch {
            throw Failure(description: "worker: \(error)")
        }
        guard region.isFormatted else { throw Failure(description: "worker: descriptor 4 is not the callback slots") }
        CallbackWatch.shared.adopt(region)
        close(Self.slotsDescriptor)  // the mapping stays
        for name in [Self.indexVariable, Self.countVariable, Self.directoryVariable, Self.portVariable,
                     Self.incarnationVariable] {
            unsetenv(name)
        }
        return WorkerContext(index: index, count: count, directory: directory, port: port, incarnation: incarnation,
                             control: Self.controlDescriptor)
    }

    /// Tells the supervisor this worker serves (its listening line, in effect).
    public func notifyReady() {
        let line = Array("ready\n".utf8)
        _ = line.withUnsafeBytes { write(self.control, $0.baseAddress, $0.count) }
    }

    /// A worker never outlives its supervisor: when the control socket reads end of file (the supervisor exited,
    /// however it died), the worker drains as on SIGTERM, and exits at once if that has not finished within
    /// `grace` (a callback may be stuck, and nothing watches it any more). A thread of its own, blocked in read().
    public func exitWhenSupervisorDies(grace: Duration) {
        let control = self.control
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(control, &byte, 1)
                if count > 0 { continue }  // the supervisor sends nothing today; tolerate it
                if count < 0 && errno == EINTR { continue }
                break
            }
            kill(getpid(), SIGTERM)
            let nanoseconds = grace.components.seconds * 1_000_000_000 + grace.components.attoseconds / 1_000_000_000
            var remaining = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
            var left = timespec()
            while nanosleep(&remaining, &left) != 0 && errno == EINTR { remaining = left }
            _exit(70)
        }
        thread.name = "agenthost-lifeline"
        thread.start()
    }

    /// Where worker `index` answers its siblings' admin questions.
    public func socketPath(ofWorker index: Int) -> String { Self.socketPath(directory: self.directory, worker: index) }
    public var supervisorSocketPath: String { Self.supervisorSocketPath(directory: self.directory) }

    static func socketPath(directory: String, worker: Int) -> String { "\(directory)/worker-\(worker).sock" }
    static func supervisorSocketPath(directory: String) -> String { "\(directory)/supervisor.sock" }
}
