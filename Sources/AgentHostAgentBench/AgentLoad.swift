import AgentHostClientSupport
import NIOCore
import Synchronization

/// A server route to load: where a run's socket goes, and the `start` frame that begins it.
struct AgentTarget: Sendable {
    var name: String
    var port: Int
    var start: String
    /// Run after run on one socket (the agent protocol allows it; Studio's one-run-per-URL does not).
    var reuseSocket = false
    /// The socket path for the next run (AutoGen Studio needs a run created over HTTP first).
    var nextPath: @Sendable () async throws -> String
}

/// What one load phase measured.
struct AgentFigures {
    var runs = 0
    var frames = 0
    var failures = 0
    var seconds = 0.0
    /// From sending `start` to the run's first frame, per run.
    var firstFrame: [UInt64] = []
    /// From the client wanting a run (creating it, for Studio; connecting; starting) to its first frame.
    var firstFrameFromConnect: [UInt64] = []
    /// From sending `start` to the run's terminal frame, per run.
    var runTime: [UInt64] = []
    var firstFailure: String?
    /// The server process's CPU time while measuring (0 when not sampled).
    var serverCPUSeconds = 0.0

    var runsPerSecond: Double { Double(self.runs) / self.seconds }
    var framesPerSecond: Double { Double(self.frames) / self.seconds }
    /// Server CPU microseconds per measured run.
    var serverMicrosecondsPerRun: Double { self.serverCPUSeconds * 1e6 / Double(max(1, self.runs)) }
}

/// Drives agent runs the way clients do: each virtual client opens a socket per run (as AutoGen Studio clients
/// must: the run id is in the URL), sends `start`, reads every frame to the terminal one, answers input requests,
/// and starts over.
struct AgentLoad: Sendable {
    let group: any EventLoopGroup

    /// Shared by the virtual clients of one phase.
    final class Phase: Sendable {
        let measuring = Atomic<Bool>(false)
        let stop = Atomic<Bool>(false)
        let figures = Mutex(AgentFigures())
    }

    /// `serverCPU`, when given, reads the server's CPU seconds: sampled when measuring starts and stops.
    func run(_ target: AgentTarget, clients: Int, warmup: Duration, duration: Duration,
             serverCPU: (() -> Double)? = nil) async -> AgentFigures {
        let phase = Phase()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    var socket: BenchWebSocket?
                    while !phase.stop.load(ordering: .relaxed) {
                        do {
                            let run: Run
                            if target.reuseSocket {
                                if socket == nil {
                                    socket = try await BenchWebSocket.connect(group: self.group, port: target.port,
                                                                              path: try await target.nextPath())
                                    _ = try await socket!.next()  // system
                                }
                                run = try await self.run(target, on: socket!, began: MonotonicClock.nanoseconds())
                            } else {
                                run = try await self.oneRun(target)
                            }
                            guard phase.measuring.load(ordering: .relaxed), !phase.stop.load(ordering: .relaxed) else { continue }
                            phase.figures.withLock {
                                $0.runs += 1
                                $0.frames += run.frames
                                $0.firstFrame.append(run.firstFrame)
                                $0.firstFrameFromConnect.append(run.firstFrameFromConnect)
                                $0.runTime.append(run.total)
                            }
                        } catch {
                            await socket?.close()
                            socket = nil
                            phase.figures.withLock {
                                $0.failures += 1
                                $0.firstFailure = $0.firstFailure ?? "\(error)"
                            }
                            try? await Task.sleep(for: .milliseconds(10))
                        }
                    }
                    await socket?.close()
                }
            }
            try? await Task.sleep(for: warmup)
            let cpuBefore = serverCPU?() ?? 0
            phase.measuring.store(true, ordering: .relaxed)
            let started = ContinuousClock.now
            try? await Task.sleep(for: duration)
            phase.stop.store(true, ordering: .relaxed)
            let elapsed = ContinuousClock.now - started
            let cpu = (serverCPU?() ?? 0) - cpuBefore
            phase.figures.withLock { $0.serverCPUSeconds = cpu }
            phase.figures.withLock { $0.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18 }
        }
        return phase.figures.withLock { $0 }
    }

    struct Run {
        var frames: Int
        var firstFrame: UInt64
        var firstFrameFromConnect: UInt64
        var total: UInt64
    }

    /// A run that has not ended after this long is a failure (its socket is closed to unblock the client).
    static let runTimeout: Duration = .seconds(30)

    func oneRun(_ target: AgentTarget) async throws -> Run {
        let began = MonotonicClock.nanoseconds()
        let path = try await target.nextPath()
        let socket = try await BenchWebSocket.connect(group: self.group, port: target.port, path: path)
        let watchdog = Task {
            try await Task.sleep(for: Self.runTimeout)
            await socket.close()
        }
        defer {
            watchdog.cancel()
            Task { await socket.close() }
        }
        let hello = try await socket.next()
        guard Self.frameType(hello.payload) == "system" else { throw BenchError("expected system, got \(String(buffer: hello.payload).prefix(100))") }
        return try await self.run(target, on: socket, began: began)
    }

    /// One run on an open socket: `start`, every frame to the terminal one, input requests answered.
    func run(_ target: AgentTarget, on socket: BenchWebSocket, began: UInt64) async throws -> Run {
        let sent = MonotonicClock.nanoseconds()
        try await socket.sendText(target.start)
        var frames = 0
        var first: UInt64 = 0
        var firstFromConnect: UInt64 = 0
        while true {
            let frame = try await socket.next()
            guard frame.opcode == 0x1 else { throw BenchError("closed mid-run (opcode \(frame.opcode))") }
            frames += 1
            if first == 0 {
                let now = MonotonicClock.nanoseconds()
                first = now &- sent
                firstFromConnect = now &- began
            }
            switch Self.frameType(frame.payload) {
            case "input_request":
                try await socket.sendText(#"{"type":"input_response","response":"Looks good. APPROVE"}"#)
            case "result":
                return Run(frames: frames, firstFrame: first, firstFrameFromConnect: firstFromConnect,
                           total: MonotonicClock.nanoseconds() &- sent)
            case "completion", "error":
                throw BenchError("run failed: \(String(buffer: frame.payload).prefix(300))")
            default:
                break
            }
        }
    }

    /// The frame's `type`: the first key of every frame, ours (`{"type":"x"`) and Studio's (`{"type": "x"`).
    static func frameType(_ payload: ByteBuffer) -> String {
        let view = payload.readableBytesView
        guard let key = view.firstRange(of: Array("\"type\"".utf8)) else { return "" }
        var index = key.upperBound
        while index < view.endIndex, view[index] == UInt8(ascii: ":") || view[index] == UInt8(ascii: " ") { index += 1 }
        guard index < view.endIndex, view[index] == UInt8(ascii: "\"") else { return "" }
        let start = index + 1
        guard let end = view[start...].firstIndex(of: UInt8(ascii: "\"")) else { return "" }
        return String(decoding: view[start..<end], as: UTF8.self)
    }
}

func percentileMilliseconds(_ samples: [UInt64], _ p: Double) -> Double {
    percentileMicroseconds(samples, p) / 1000
}
