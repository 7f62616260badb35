import AgentHostPluginSDK

/// Who started a run: the whole identity the host authenticated, not its subject alone. The host's issuer tells
/// credentials apart (a JWT's `iss`, `api-key` for API keys, `mtls:<CA>` for client certificates: see
/// `agenthost_open_info_v1.identity_issuer`), so an API key for `alice` is not a JWT whose `sub` is `alice`.
///
/// An identity without a subject (no credentials on a public route, or a JWT without `sub`) names nobody: two
/// such clients must not share runs, so their runs are reached by a resume token only (`RunKey`).
struct RunOwner: Hashable, Sendable {
    let issuer: String
    let subject: String

    init(issuer: String, subject: String) {
        self.issuer = issuer
        self.subject = subject
    }

    init(_ info: OpenInfo) {
        self.init(issuer: info.issuer, subject: info.subject)
    }

    var isAnonymous: Bool { self.subject.isEmpty }
}
