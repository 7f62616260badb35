import Foundation
import Glibc

/// One running worker as its supervisor sees it: pid, the supervisor's end of the control socket, the callback
/// slots it shares with the worker, and when it started.
final class WorkerProcess: Sendable {
    let index: Int
    let pid: pid_t
    let memory: SharedSlotMemory
    let startedAt: ContinuousClock.Instant
    /// The run log's writer incarnation of this process (a new one per start).
    let incarnation: String
    private let control: CInt

    enum Report: Sendable {
        case ready
        case exited(WorkerExit)
    }

    /// Starts worker `index`. `report` is called with its pid from a thread of the worker's own: `.ready` when it serves,
    /// `.exited` once it is gone (its control socket closed and `waitpid` reaped it).
    static func start(index: Int, count: Int, directory: String, port: Int, arguments: [String],
                      report: @escaping @Sendable (pid_t, Report) -> Void) throws -> WorkerProcess {
        let memory = try SharedSlotMemory.create(in: directory)
        var pair: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            memory.release()
            throw WorkerSpawner.Failure(description: "socketpair failed: errno \(errno)")
        }
        var environment = ProcessInfo.processInfo.environment
        environment[WorkerContext.indexVariable] = "\(index)"
        environment[WorkerContext.countVariable] = "\(count)"
        environment[WorkerContext.directoryVariable] = directory
        environment[WorkerContext.portVariable] = "\(port)"
        let incarnation = Self.newIncarnation()
        environment[WorkerContext.incarnationVariable] = incarnation
        let pid: pid_t
        do {
            pid = try WorkerSpawner.spawn(arguments: arguments, environment: environment,
                                          inherited: [pair[1], memory.fd])
        } catch {
            close(pair[0])
            close(pair[1])
            memory.release()
            throw error
        }
        close(pair[1])
        let worker = WorkerProcess(index: index, pid: pid, memory: memory, control: pair[0], incarnation: incarnation)
        worker.watch(report: report)
        return worker
    }

    private init(index: Int, pid: pid_t, memory: SharedSlotMemory, control: CInt, incarnation: String) {
        self.index = index
        self.incarnation = incarnation
        self.pid = pid
        self.memory = memory
        self.control = control
        self.startedAt = .now
    }

    /// Blocking reads and waitpid, on a thread of their own (never on Swift's cooperative pool).
    private func watch(report: @escaping @Sendable (pid_t, Report) -> Void) {
        let control = self.control
        let pid = self.pid
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 64)
            var line: [UInt8] = []
            while true {
                let count = buffer.withUnsafeMutableBytes { read(control, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                for byte in buffer[..<count] {
                    if byte == UInt8(ascii: "\n") {
                        if line == Array("ready".utf8) { report(pid, .ready) }
                        line = []
                    } else if line.count < 64 {
                        line.append(byte)
                    }
                }
            }
            close(control)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            report(pid, .exited(WorkerExit(waitStatus: status)))
        }
        thread.name = "agenthost-worker-\(self.index)-watch"
        thread.start()
    }

    /// 128 random bits in hex, the run log's incarnation format.
    static func newIncarnation() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    func signal(_ signal: Int32) {
        kill(self.pid, signal)
    }
}
