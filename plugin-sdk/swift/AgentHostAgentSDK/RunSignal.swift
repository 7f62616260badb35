import AgentHostPluginSDK
import Foundation
import FoundationEssentials

/// What a socket sends a run's writer through the run log (`RunLog.signal`) when the run is written by another
/// plugin generation or worker process: the client's `stop` and `input_response`, and whether a socket watches
/// the run (so the writer's resume grace counts remote watchers too). Small JSON objects; the writer applies
/// them as if they came from one of its own sockets.
enum RunSignal: Equatable {
    case stop(reason: String?)
    case inputResponse(requestID: String?, response: String)
    case watching
    case notWatching

    /// Nil for bytes that are not a signal of ours (logged by nobody: the writer simply ignores them).
    init?(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any],
            let type = object["type"] as? String
        else { return nil }
        switch type {
        case "stop": self = .stop(reason: object["reason"] as? String)
        case "input_response":
            guard let response = object["response"] as? String else { return nil }
            self = .inputResponse(requestID: object["request_id"] as? String, response: response)
        case "watching": self = .watching
        case "not_watching": self = .notWatching
        default: return nil
        }
    }

    var json: String {
        switch self {
        case .stop(let reason):
            return "{\"type\":\"stop\"" + (reason.map { ",\"reason\":\(JSONText.quoted($0))" } ?? "") + "}"
        case .inputResponse(let requestID, let response):
            return "{\"type\":\"input_response\"" + (requestID.map { ",\"request_id\":\(JSONText.quoted($0))" } ?? "")
                + ",\"response\":\(JSONText.quoted(response))}"
        case .watching: return "{\"type\":\"watching\"}"
        case .notWatching: return "{\"type\":\"not_watching\"}"
        }
    }
}
