import CAgentHostPlugin

/// (1.2) An upgrade request, as `AgentHostPlugin.admit(_:)` sees it before the host answers it (copied out of the
/// borrowed C struct). Credentials are not in it: the identity fields say who it is.
public struct UpgradeRequestInfo: Sendable {
    public var route: String
    public var requestTarget: String
    public var remoteAddress: String
    /// Every header except Authorization and Sec-WebSocket-Protocol, names lower-cased, in order.
    public var headers: [(name: String, value: String)]
    /// The subprotocols the client offered (credential entries removed), in order.
    public var subprotocols: [String]
    public var subject: String
    public var issuer: String
    public var scopes: [String]
    public var claimsJSON: String

    init(_ raw: UnsafePointer<agenthost_upgrade_request_v1>) {
        let request = raw.pointee
        self.route = request.route.copiedText
        self.requestTarget = request.request_target.copiedText
        self.remoteAddress = request.remote_address.copiedText
        self.headers = (0..<request.header_count).map { index in
            (name: request.headers[index].name.copiedText, value: request.headers[index].value.copiedText)
        }
        self.subprotocols = (0..<request.subprotocol_count).map { request.subprotocols[$0].copiedText }
        self.subject = request.identity_subject.copiedText
        self.issuer = request.identity_issuer.copiedText
        self.scopes = request.identity_scopes.copiedText.split(separator: " ").map(String.init)
        self.claimsJSON = request.identity_claims_json.copiedText
    }

    /// The first value of the header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return self.headers.first { $0.name == wanted }?.value
    }
}

/// (1.2) What `AgentHostPlugin.admit(_:)` answers.
public enum UpgradeAnswer: Sendable, Equatable {
    /// Upgrade, selecting `subprotocol` (one of those offered), or leaving the choice to the host when nil.
    case accept(subprotocol: String?)
    /// Answer with this HTTP status (400-599) and body (at most 1024 bytes; JSON if it starts with `{` or `[`).
    case refuse(status: Int, body: String)
}

extension agenthost_bytes {
    /// The borrowed bytes as a String of their own (invalid UTF-8 repaired), for the info structs the SDK copies out.
    var copiedText: String {
        guard let ptr = self.ptr else { return "" }
        return String(decoding: UnsafeBufferPointer(start: ptr, count: self.len), as: UTF8.self)
    }
}
