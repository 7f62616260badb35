import AgentHostPluginSDK
import Synchronization

/// The plugin's log as the pool and its threads use it, with a way to close it.
///
/// Why: threads that read worker stderr log whenever a worker writes, and a refused instance's log context is freed
/// by the host as soon as `instance_create` returns. So when loading fails, the pool closes its log before it
/// throws: a line that arrives afterwards is dropped, never written through a dangling context. (An instance that
/// loaded keeps its context for the life of the process, so its log is never closed.)
final class PluginLog: Sendable {
    private let sink: @Sendable (LogLevel, String) -> Void
    /// Held while a line is written: once `close()` returns, no write is under way or can start.
    private let open = Mutex(true)

    init(_ sink: @escaping @Sendable (LogLevel, String) -> Void) {
        self.sink = sink
    }

    func callAsFunction(_ level: LogLevel, _ message: String) {
        self.open.withLock { open in
            if open { self.sink(level, message) }
        }
    }

    func close() {
        self.open.withLock { $0 = false }
    }
}
