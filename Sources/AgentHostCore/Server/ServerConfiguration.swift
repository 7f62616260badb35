import NIOCore

/// Everything the listening server needs; the CLI fills it from flags and the config file.
public struct ServerConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 binds any free port; `AgentHostServer.localAddress` tells which.
    public var port: Int = 8080
    public var webSocket = WebSocketConfiguration()
    /// Largest total size of request headers (name and value bytes) before the request is refused.
    public var maxHeaderSize: Int = 16 << 10
    /// A connection must finish its HTTP request (or upgrade) within this time (against slowloris).
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// Deadlines and body limit of plain HTTP requests after the first one's head (health checks, metrics).
    public var http = HTTPLimits()
    /// On shutdown, how long open WebSockets get to finish their close handshakes before they are dropped.
    public var shutdownTimeout: TimeAmount = .seconds(10)

    /// If set, this route is served by a bare NIO echo handler instead of an endpoint: the baseline the benchmark
    /// measures the plugin path against. Off in production.
    public var baselineEchoRoute: String?

    /// Open TCP connections the server accepts at once; the next gets 503. 0: no limit.
    public var maxConnections: Int = 10_000
    /// Open connections one client IP may hold; the next gets 429. 0: no limit.
    public var maxConnectionsPerAddress: Int = 256
    /// Per-route policies (allowed origins), by path.
    public var routePolicies: [String: RoutePolicy] = [:]
    /// The policy of routes not listed in `routePolicies`.
    public var defaultRoutePolicy = RoutePolicy()

    /// A path's policy: its own entry, else the longest pattern entry (`/agents/*`) above it, else the default.
    func policy(forPath path: some StringProtocol) -> RoutePolicy {
        if let exact = self.routePolicies[String(path)] { return exact }
        return RoutePattern.bestMatch(for: path, in: self.routePolicies.keys).flatMap { self.routePolicies[$0] }
            ?? self.defaultRoutePolicy
    }

    /// Whether `path` spells a policy entry (or a pattern entry's prefix) with other letter case: `/agents/Secret`
    /// for an entry `/agents/secret`. Routes are exact, but a plugin serving a pattern may read both as one path,
    /// and which policy such a path should get is a guess either way: it is refused instead.
    func isCaseVariantOfAPolicy(_ path: some StringProtocol) -> Bool {
        let folded = path.lowercased()
        for key in self.routePolicies.keys {
            if let prefix = RoutePattern.prefix(of: key) {
                let foldedPrefix = prefix.lowercased()
                if folded.hasPrefix(foldedPrefix) && folded.count > foldedPrefix.count && !path.hasPrefix(prefix) {
                    return true
                }
            } else if key.lowercased() == folded && key != path {
                return true
            }
        }
        return false
    }

    /// Bind with SO_REUSEPORT: the workers of `--workers N` each listen on the same port (see `WorkerSupervisor`).
    public var reusePort = false
    /// Sent as the `agenthost-worker` header of every upgrade answer (a worker's pid): which worker process serves
    /// a socket, for operators and tests. nil (a single process): not sent.
    public var workerHeader: String?

    /// Serve TLS (wss://) with this context provider; nil: plain ws://.
    public var tls: TLSContextProvider?

    /// Checks credentials before the upgrade (tokens, keys); nil: none are checked.
    public var authenticator: (any ConnectionAuthenticator)?

    /// What the server asks: the configured authenticator, then, when TLS verifies client certificates, the
    /// certificate (`ClientCertificateAuthenticator`), as one chain; nil when there is neither.
    var authenticators: (any ConnectionAuthenticator)? {
        var chain: [any ConnectionAuthenticator] = []
        if let authenticator = self.authenticator { chain.append(authenticator) }
        if self.tls?.settings.clientCAFile != nil { chain.append(ClientCertificateAuthenticator()) }
        switch chain.count {
        case 0: return nil
        case 1: return chain[0]
        default: return AuthenticatorChain(chain)
        }
    }

    /// Admin routes (`GET /plugins`, `/metrics`) answer requests that send `Authorization: Bearer <token>`.
    public var adminToken: String?
    /// Whether admin routes also answer every loopback peer without the token. Off by default: behind a same-host
    /// reverse proxy every client is a loopback peer.
    public var adminTrustsLoopback = false

    public init() {}
}
