import AgentHostCore

/// A worker that died while the server was serving: what the log says and what the run log's hook gets.
public struct WorkerDeath: Sendable, CustomStringConvertible {
    public var worker: Int
    public var pid: Int32
    /// The run log's writer incarnation of the dead process: its live logs need their terminal entry.
    public var incarnation: String
    public var exit: WorkerExit
    /// The callbacks its event loops were in when it died (from the shared slots): usually the one that crashed.
    public var runningCallbacks: [BusyCallback]
    /// Set when the watchdog killed it: the callback that blocked its loop past the limit, and for how long.
    public var watchdog: (callback: BusyCallback, seconds: Double)?

    public var description: String {
        if let watchdog {
            let seconds = (watchdog.seconds * 10).rounded() / 10
            return "killed by the watchdog: \(watchdog.callback.description) blocked its event loop for \(seconds) s"
        }
        let running = self.runningCallbacks.map(\.description).joined(separator: ", ")
        return "\(self.exit)" + (running.isEmpty ? ", no plugin callback running" : " while running \(running)")
    }
}
