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
        func text(_ bytes: agenthost_bytes) -> String {
            guard let ptr = bytes.ptr else { return "" }
            return String(decoding: UnsafeBufferPointer(start: ptr, count: bytes.len), as: UTF8.self)
        }
        let request = raw.pointee
        self.route = text(request.route)
        self.requestTarget = text(request.request_target)
        self.remoteAddress = text(request.remote_address)
        self.headers = (0..<request.header_count).map { index in
            (name: text(request.headers[index].name), value: text(request.headers[index].value))
        }
        self.subprotocols = (0..<request.subprotocol_count).map { text(request.subprotocols[$0]) }
        self.subject = text(request.identity_subject)
        self.issuer = text(request.identity_issuer)
        self.scopes = text(request.identity_scopes).split(separator: " ").map(String.init)
        self.claimsJSON = text(request.identity_claims_json)
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
