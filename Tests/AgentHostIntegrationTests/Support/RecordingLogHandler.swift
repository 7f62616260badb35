import Logging
import Synchronization

/// A log handler that keeps every line, so tests can check what the server says (and that it says it once).
final class LogRecorder: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let lines = Mutex<[Line]>([])

    var recorded: [Line] { self.lines.withLock { $0 } }

    func append(_ line: Line) { self.lines.withLock { $0.append(line) } }

    func logger(label: String = "agenthost-test") -> Logger {
        Logger(label: label) { _ in RecordingLogHandler(recorder: self) }
    }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = self.metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        self.recorder.append(.init(level: event.level, message: "\(event.message)",
                                   metadata: all.mapValues { "\($0)" }))
    }
}
