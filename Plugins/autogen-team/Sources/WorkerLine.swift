import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a worker says about one run (one line of its stdout; see agenthost_autogen_worker.py for the format).
enum WorkerEvent: Sendable {
    case event(json: String, chunk: Bool)
    case inputRequest(requestID: String, prompt: String, json: String)
    case result(json: String)
    case cancelled(reason: String)
    case error(message: String)
    /// The worker process died or was killed while the run was on it.
    case workerLost(reason: String)
    /// The host dropped the run's waiting events (RunEvents' budget): the run must be stopped on the worker.
    case backlogged(reason: String)

    var isTerminal: Bool {
        switch self {
        case .event, .inputRequest: return false
        default: return true
        }
    }
}

/// A parsed worker line: either about a run, or about the worker itself.
enum WorkerLine {
    case run(id: String, event: WorkerEvent)
    case ready(pid: Int32)
    case pong(Int)
    /// A configured team loaded (error nil) or did not.
    case team(key: String, error: String?)

    /// Reads the leading tab-separated fields only: the last field (AutoGen's JSON, megabytes when a task carries
    /// images) is copied once and never walked (json.dumps never writes a raw tab). Splitting the whole line into
    /// Characters kept the worker's one reader so busy that its pongs queued behind megabytes of events.
    static func parse(_ line: UnsafeBufferPointer<UInt8>) -> WorkerLine? {
        var fields = Fields(line)
        guard let head = fields.next(), let second = fields.peekRest() else { return nil }
        switch fields.text(head) {
        case "ready":
            let pid = (try? JSONSerialization.jsonObject(with: Data(second)) as? [String: Any])?["pid"]
            return (pid as? NSNumber).map { .ready(pid: $0.int32Value) }
        case "pong":
            return Int(fields.text(second)).map { .pong($0) }
        case "team":
            guard let keyField = fields.next(), let key = jsonString(keyField), let status = fields.next() else {
                return nil
            }
            if fields.text(status) == "ok" { return .team(key: key, error: nil) }
            let reason = fields.rest().flatMap(jsonString)
            return .team(key: key, error: reason ?? "the worker gave no reason")
        default:
            break
        }
        let id = fields.text(head)
        guard let kind = fields.next() else { return nil }
        switch fields.text(kind) {
        case "event", "chunk":
            guard let json = fields.rest() else { return nil }
            return .run(id: id, event: .event(json: fields.text(json), chunk: fields.text(kind) == "chunk"))
        case "input_request":
            guard let requestID = fields.next().flatMap(jsonString), let prompt = fields.next().flatMap(jsonString),
                  let json = fields.rest()
            else { return nil }
            return .run(id: id, event: .inputRequest(requestID: requestID, prompt: prompt, json: fields.text(json)))
        case "result":
            // JSON, then the run's duration after the last tab (found from the end: a few bytes back).
            guard let rest = fields.rest(), let tab = rest.lastIndex(of: UInt8(ascii: "\t")) else { return nil }
            return .run(id: id, event: .result(json: fields.text(UnsafeBufferPointer(rebasing: rest[..<tab]))))
        case "cancelled":
            return .run(id: id, event: .cancelled(reason: fields.rest().flatMap(jsonString) ?? "Cancelled"))
        case "error":
            return .run(id: id, event: .error(message: fields.rest().flatMap(jsonString) ?? "worker error"))
        default:
            return nil
        }
    }

    private static func jsonString(_ field: UnsafeBufferPointer<UInt8>) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(field), options: [.fragmentsAllowed])) as? String
    }

    /// The tab-separated fields of a line, front to back, each found with `memchr`.
    private struct Fields {
        let line: UnsafeBufferPointer<UInt8>
        var offset = 0

        init(_ line: UnsafeBufferPointer<UInt8>) { self.line = line }

        /// The next field, up to the next tab (or the line's end).
        mutating func next() -> UnsafeBufferPointer<UInt8>? {
            guard self.offset <= self.line.count, let base = self.line.baseAddress else { return nil }
            let remaining = self.line.count - self.offset
            let end: Int
            if remaining > 0, let tab = memchr(base + self.offset, Int32(UInt8(ascii: "\t")), remaining) {
                end = UnsafeRawPointer(tab) - UnsafeRawPointer(base)
            } else {
                end = self.line.count
            }
            defer { self.offset = end + 1 }
            return UnsafeBufferPointer(rebasing: self.line[self.offset..<end])
        }

        /// Everything after the fields read so far, tabs included; nil if the line has no more.
        mutating func rest() -> UnsafeBufferPointer<UInt8>? {
            defer { self.offset = self.line.count + 1 }
            return self.peekRest()
        }

        func peekRest() -> UnsafeBufferPointer<UInt8>? {
            guard self.offset <= self.line.count else { return nil }
            return UnsafeBufferPointer(rebasing: self.line[self.offset...])
        }

        func text(_ field: UnsafeBufferPointer<UInt8>) -> String {
            String(decoding: field, as: UTF8.self)
        }
    }
}
