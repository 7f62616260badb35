import AgentHostCore
import AgentHostRunLog
import Foundation
import NIOHTTP1

/// The run history API: `GET /runs/{id}` (optionally `?route=/path`) and `GET /runs?route=...&limit=...`, for the
/// runs' owner only. Another identity gets 404, exactly as for a run that does not exist; anonymous callers get
/// 401 (anonymous runs are reachable only with their secret, through the plugin).
public struct RunHistoryRoute: IdentityRoute {
    public static let prefix = "/runs"
    /// Largest `limit` of a listing.
    public static let maxLimit = 500
    /// Entry bytes one history response may carry; past it the response says `"truncated":true`.
    public let maxResponseBytes: Int
    private let service: RunLogService

    public init(service: RunLogService, maxResponseBytes: Int = 8 << 20) {
        self.service = service
        self.maxResponseBytes = maxResponseBytes
    }

    public func respond(path: String, query: String?, identity: Identity?) async -> IdentityRouteResponse {
        // An identity without a subject names nobody (a JWT without `sub`): its runs are anonymous, reached with
        // their secret only, never listed.
        guard let identity, !identity.subject.isEmpty else {
            return Self.error(.unauthorized, "the run history needs the credentials the run was started with")
        }
        let owner = RunLogOwner(issuer: identity.issuer, subject: identity.subject)
        guard let parameters = Self.parameters(query) else {
            return Self.error(.badRequest, "the query is not valid percent-encoded UTF-8")
        }
        let route = parameters["route"]
        if let route, !route.hasPrefix("/") { return Self.error(.badRequest, "route must start with '/'") }
        // A control character (a NUL above all: SQLite would read the text only up to it) is in no route's path.
        if let route, route.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return Self.error(.badRequest, "route must be a path without control characters")
        }
        // While the store fails, what it holds is behind what the runs sent: "no such run" would be wrong.
        if self.service.storeIsFailing { return Self.error(.serviceUnavailable, "the run log store is failing now") }
        do {
            if path == Self.prefix || path == Self.prefix + "/" {
                var limit = 50
                if let text = parameters["limit"] {
                    guard let value = Int(text), (1 ... Self.maxLimit).contains(value) else {
                        return Self.error(.badRequest, "limit must be a whole number from 1 to \(Self.maxLimit)")
                    }
                    limit = value
                }
                let runs = try await self.service.runs(owner: owner, route: route, limit: limit)
                return IdentityRouteResponse(status: .ok, body: #"{"runs":["# + runs.map(Self.summary).joined(separator: ",") + "]}")
            }
            let encoded = path.dropFirst(Self.prefix.count + 1)
            guard !encoded.contains("/"), let id = String(encoded).removingPercentEncoding, !id.isEmpty,
                id.utf8.count <= RunLogConfiguration.maxKeyBytes
            else { return Self.error(.notFound, "no such run") }
            guard let history = try await self.service.history(owner: owner, key: Array(id.utf8), route: route,
                                                               maxBytes: self.maxResponseBytes)
            else { return Self.error(.notFound, "no such run") }
            return IdentityRouteResponse(status: .ok, body: Self.document(history))
        } catch {
            return Self.error(.serviceUnavailable, "the run log store cannot be read now")
        }
    }

    // MARK: JSON

    private static func summary(_ record: RunLogRecord) -> String {
        "{" + Self.fields(record).joined(separator: ",") + "}"
    }

    private static func fields(_ record: RunLogRecord) -> [String] {
        [
            #""run_id":"# + JSONText.quoted(String(decoding: record.key, as: UTF8.self)),
            #""route":"# + JSONText.quoted(record.route),
            #""status":"# + JSONText.quoted(record.status),
            #""created":"# + JSONText.quoted(RunLogTime.iso8601(record.createdMilliseconds)),
            #""ended":"# + (record.isLive ? "null" : JSONText.quoted(RunLogTime.iso8601(record.endedMilliseconds))),
            #""first_seq":\#(record.firstSeq)"#,
            #""last_seq":\#(record.lastSeq)"#,
        ]
    }

    /// Each entry as raw JSON when it is valid JSON (agent frames are), else as a JSON string.
    static func document(_ history: RunHistory) -> String {
        var body = "{" + Self.fields(history.record).joined(separator: ",") + #","frames":["#
        for (index, entry) in history.entries.enumerated() {
            if index > 0 { body += "," }
            if (try? JSONSerialization.jsonObject(with: Data(entry.bytes), options: [.fragmentsAllowed])) != nil,
                let text = String(validating: entry.bytes, as: UTF8.self) {
                body += text
            } else {
                body += JSONText.quoted(String(decoding: entry.bytes, as: UTF8.self))
            }
        }
        body += "]"
        if history.truncated { body += #","truncated":true"# }
        return body + "}"
    }

    /// The query's parameters, decoded; nil when a value is not valid percent-encoded UTF-8 (never used half-decoded).
    private static func parameters(_ query: String?) -> [String: String]? {
        var result: [String: String] = [:]
        for pair in (query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard let name = parts.first else { continue }
            let value = parts.count > 1 ? String(parts[1]).replacingOccurrences(of: "+", with: " ") : ""
            guard let decoded = value.removingPercentEncoding else { return nil }
            result[String(name)] = decoded
        }
        return result
    }

    private static func error(_ status: HTTPResponseStatus, _ message: String) -> IdentityRouteResponse {
        IdentityRouteResponse(status: status, body: #"{"error":"# + JSONText.quoted(message) + "}")
    }
}
