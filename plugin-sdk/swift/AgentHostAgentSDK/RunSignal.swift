import AgentHostPluginSDK
import Foundation
import FoundationEssentials

/// What a socket sends a run's writer through the run log (`RunLog.signal`) when the run is written by another
/// plugin generation or worker process: the client's `stop` and `input_response`, and whether a socket watches
/// the run (so the writer's resume grace counts remote watchers too). Small JSON objects; the writer applies
/// them as if they came from one of its own sockets.
///
/// Watching is a lease: `watching` names the remote stream (`watcher`, a random id) and counts for `watchLease`
/// seconds; the remote side sends it again every `watchRenewal` while it watches (its registry's sweep), and
/// `not_watching` when it stops. A remote side that dies or is dropped simply stops renewing.
enum RunSignal: Equatable {
    case stop(reason: String?)
    case inputResponse(requestID: String?, response: String)
    /// `watcher`: nil from an SDK before leases (counted as one watcher, "", with a lease all the same).
    case watching(watcher: String?)
    case notWatching(watcher: String?)

    /// How long a remote watcher counts after its last `watching` (seconds of the writer's clock).
    static let watchLease: Double = 30
    /// How often a remote side renews its lease: three renewals per lease, so one late or lost one does not end
    /// it.
    static let watchRenewal: Double = 10

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
        case "watching": self = .watching(watcher: object["watcher"] as? String)
        case "not_watching": self = .notWatching(watcher: object["watcher"] as? String)
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
        case .watching(let watcher): return "{\"type\":\"watching\"" + Self.watcherField(watcher) + "}"
        case .notWatching(let watcher): return "{\"type\":\"not_watching\"" + Self.watcherField(watcher) + "}"
        }
    }

    private static func watcherField(_ watcher: String?) -> String {
        watcher.map { ",\"watcher\":\(JSONText.quoted($0))" } ?? ""
    }
}
