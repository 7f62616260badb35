import Foundation

/// What a worker says about one run (one line of its stdout; see agenthost_autogen_worker.py for the format).
enum WorkerEvent: Sendable {
    case event(json: String, chunk: Bool)
    case inputRequest(requestID: String, prompt: String, json: String)
    case result(json: String)
    case cancelled(reason: String)
    case error(message: String)
    /// The worker process died or was killed while the run was on it.
    case workerLost(reason: String)

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

    /// Splits on tabs; AutoGen's JSON fields pass through untouched (json.dumps never writes a raw tab).
    static func parse(_ line: Substring) -> WorkerLine? {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count >= 2 else { return nil }
        switch fields[0] {
        case "ready":
            let pid = (try? JSONSerialization.jsonObject(with: Data(fields[1].utf8)) as? [String: Any])?["pid"]
            return (pid as? NSNumber).map { .ready(pid: $0.int32Value) }
        case "pong":
            return Int(fields[1]).map { .pong($0) }
        case "team":
            guard fields.count >= 3, let key = jsonString(fields[1]) else { return nil }
            if fields[2] == "ok" { return .team(key: key, error: nil) }
            let reason = fields.count >= 4 ? jsonString(fields[3]) : nil
            return .team(key: key, error: reason ?? "the worker gave no reason")
        default:
            break
        }
        let id = String(fields[0])
        switch (fields[1], fields.count) {
        case ("event", 3): return .run(id: id, event: .event(json: String(fields[2]), chunk: false))
        case ("chunk", 3): return .run(id: id, event: .event(json: String(fields[2]), chunk: true))
        case ("input_request", 5):
            guard let requestID = jsonString(fields[2]), let prompt = jsonString(fields[3]) else { return nil }
            return .run(id: id, event: .inputRequest(requestID: requestID, prompt: prompt, json: String(fields[4])))
        case ("result", 4): return .run(id: id, event: .result(json: String(fields[2])))
        case ("cancelled", 3): return .run(id: id, event: .cancelled(reason: jsonString(fields[2]) ?? "Cancelled"))
        case ("error", 3): return .run(id: id, event: .error(message: jsonString(fields[2]) ?? "worker error"))
        default: return nil
        }
    }

    private static func jsonString(_ field: Substring) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(field.utf8), options: [.fragmentsAllowed])) as? String
    }
}
