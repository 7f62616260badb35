import Logging
import NIOCore
import NIOHTTP1

/// Looks at a WebSocket upgrade request before NIO's upgrader does, and answers the ones that must be refused with
/// a proper HTTP status: over a connection limit (503/429), an unknown route (404), a malformed handshake (400), a
/// browser origin the route does not allow (403), missing or invalid credentials (401), missing scopes (403). It
/// also chooses the endpoint, the identity and the subprotocol, so the connection is served with exactly what was
/// checked, even if the route table is swapped meanwhile.
///
/// It exists because NIO's typed upgrader, when no upgrader accepts a request that asked to upgrade, consumes the
/// request without passing it on: nothing after it could answer.
///
/// Once it has passed an accepted upgrade request on, it never opens what follows: when the upgrader removes the
/// HTTP decoder, the decoder forwards the bytes it had not parsed (a client's first frames, sent in the same segment
/// as the request) as a raw `ByteBuffer` through this handler, which is removed only later. The upgrader buffers
/// them and replays them to the WebSocket handler (NIO's frame decoder on the bare baseline), so they must go
/// through untouched.
final class UpgradeRequestGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    static let name = "upgrade-request-guard"

    private enum State {
        case idle
        /// Refusing this request: its remaining parts are dropped and the answer goes out at its end. A `raw`
        /// message is an endpoint's own body, sent as it is; otherwise it is wrapped as `{"error": message}`.
        case refusing(head: HTTPRequestHead, status: HTTPResponseStatus, message: String, ended: Bool, raw: Bool = false)
        /// Waiting for the authenticator; the request's parts wait here.
        case authenticating(head: HTTPRequestHead, buffered: [HTTPServerRequestPart])
        /// The connection's first request went on: an accepted upgrade request to the upgrader (from now on inbound
        /// data may be raw bytes, see above), or a plain request, after which NIO's upgrader is gone and
        /// `HTTPRequestHandler` answers whatever follows (an upgrade attempt included, with 400). Either way nothing
        /// is unwrapped or checked again, only passed on.
        case passingThrough
    }

    private let router: Router
    private let selected: SelectedEndpoint
    private let admission: ConnectionLimiter.Decision
    private let configuration: ServerConfiguration
    private let logger: Logger
    private var state = State.idle

    init(router: Router, selected: SelectedEndpoint, configuration: ServerConfiguration,
         admission: ConnectionLimiter.Decision, logger: Logger) {
        self.router = router
        self.selected = selected
        self.configuration = configuration
        self.admission = admission
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .passingThrough = self.state {
            context.fireChannelRead(data)
            return
        }
        let part = Self.unwrapInboundIn(data)
        switch self.state {
        case .refusing(let head, let status, let message, _, let raw):
            if case .end = part {
                self.state = .refusing(head: head, status: status, message: message, ended: true, raw: raw)
                self.sendRefusal(context: context)
            }
            return
        case .authenticating(let head, var buffered):
            buffered.append(part)
            self.state = .authenticating(head: head, buffered: buffered)
            return
        case .idle, .passingThrough:
            break
        }
        guard case .head(let head) = part else {
            context.fireChannelRead(data)
            return
        }
        if self.admission != .admitted {
            // Over a connection limit: whatever is asked, the answer is no, and the connection closes.
            if self.admission == .tooManyTotal {
                Refusals.count(.tooManyConnections)
                self.refuse(head, .serviceUnavailable, "the server is at its connection limit; retry later")
            } else {
                Refusals.count(.tooManyConnectionsFromAddress)
                self.refuse(head, .tooManyRequests, "too many connections from your address")
            }
            return
        }
        guard head.headers.contains(name: "upgrade") else {
            // Only a connection's first request can upgrade: this one makes it a plain HTTP connection.
            self.state = .passingThrough
            context.fireChannelRead(data)
            return
        }
        if let (status, message) = self.checkHandshake(head) {
            switch status {
            case .notFound: Refusals.count(.unknownRoute)
            case .forbidden: Refusals.count(.origin)
            default: Refusals.count(.badHandshake)
            }
            self.refuse(head, status, message)
            if Self.announcesBody(head) {
                // Its body would be read and dropped until it ends: answer now and close instead.
                self.state = .refusing(head: head, status: status, message: message, ended: true)
                self.sendRefusal(context: context)
            }
            return
        }
        guard let authenticator = self.configuration.authenticators else {
            guard self.selected.reserve() else {
                self.refuse(head, .serviceUnavailable, "this route is being replaced; retry")
                return
            }
            self.selected.identity = .anonymous
            if let refusal = self.askEndpoint(context: context, head: head) {
                self.state = .refusing(head: head, status: refusal.status, message: refusal.body, ended: false,
                                       raw: refusal.raw)
                return
            }
            self.state = .passingThrough
            context.fireChannelRead(data)
            return
        }
        self.state = .authenticating(head: head, buffered: [])
        let promise = context.eventLoop.makePromise(of: AuthenticationResult.self)
        let request = AuthenticationRequest(head: head, clientCertificate: Self.clientCertificateIdentity(
            context: context, verified: self.configuration.tls?.settings.clientCAFile != nil))
        promise.completeWithTask { await authenticator.authenticate(request) }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { result in
            let (handler, context) = loopBound.value
            handler.authenticated(context: context, result: result)
        }
    }

    private func authenticated(context: ChannelHandlerContext, result: AuthenticationResult) {
        guard case .authenticating(let head, let buffered) = self.state else { return }
        let policy = self.configuration.policy(forPath: head.uri.requestPath)
        if let (status, message) = policy.access.refusal(for: result) {
            Refusals.count(status == 401 ? .unauthenticated : .forbidden)
            self.refuseAfterAuthentication(context: context, head: head, buffered: buffered,
                                           status: HTTPResponseStatus(statusCode: status), message: message)
            return
        }
        guard self.selected.reserve() else {
            self.refuseAfterAuthentication(context: context, head: head, buffered: buffered,
                                           status: .serviceUnavailable, message: "this route is being replaced; retry")
            return
        }
        if case .authenticated(let identity, _) = result {
            self.selected.identity = identity
        }
        if let refusal = self.askEndpoint(context: context, head: head) {
            let ended = buffered.contains { if case .end = $0 { return true } else { return false } }
            self.state = .refusing(head: head, status: refusal.status, message: refusal.body, ended: ended,
                                   raw: refusal.raw)
            if ended { self.sendRefusal(context: context) }
            return
        }
        self.state = .passingThrough
        context.fireChannelRead(Self.wrapInboundOut(.head(head)))
        for part in buffered { context.fireChannelRead(Self.wrapInboundOut(part)) }
        context.fireChannelReadComplete()
    }

    /// The endpoint's own say (a plugin's on_upgrade), once everything the host checks has passed and the endpoint
    /// is reserved (so it cannot be dropped meanwhile). Nil to go ahead (with the subprotocol it chose, if any);
    /// otherwise its refusal, and the reservation is given back.
    private func askEndpoint(context: ChannelHandlerContext, head: HTTPRequestHead)
        -> (status: HTTPResponseStatus, body: String, raw: Bool)?
    {
        guard let endpoint = self.selected.endpoint, endpoint.decidesUpgrades else { return nil }
        let offered = head.headers[canonicalForm: "sec-websocket-protocol"].map { String($0) }
            .filter(Self.isSelectableSubprotocol)
        let request = UpgradeRequest(
            route: String(head.uri.requestPath), requestTarget: AgentHostServer.withoutToken(head.uri),
            remoteAddress: PeerAddress.text(context.channel.remoteAddress),
            // Credentials stay with the host: Authorization, and Sec-WebSocket-Protocol (its `bearer.` entry is a
            // token; the offered subprotocols are passed on their own, without it).
            headers: head.headers.filter { !["authorization", "sec-websocket-protocol"].contains($0.name.lowercased()) }
                .map { (name: $0.name.lowercased(), value: $0.value) },
            subprotocols: offered, identity: self.selected.identity)
        // on_upgrade runs on the event loop like every callback: a slow one is said as theirs are.
        let started = CoarseClock.nanoseconds()
        let decision = endpoint.admit(request)
        let elapsed = CoarseClock.nanoseconds() &- started
        if elapsed > UInt64(max(0, self.configuration.webSocket.slowCallbackThreshold.nanoseconds)) {
            self.logger.warning("slow endpoint callback", metadata: [
                "endpoint": "\(endpoint.name)", "callback": "on_upgrade", "route": "\(request.route)",
                "duration_ms": "\(Double(elapsed) / 1e6)",
            ])
        }
        switch decision {
        case .accept(let subprotocol):
            guard let subprotocol else { return nil }
            guard offered.contains(subprotocol) else {
                self.selected.cancelReservation()
                return (.internalServerError, "the route chose a subprotocol the client did not offer", false)
            }
            self.selected.subprotocol = subprotocol
            return nil
        case .refuse(let status, let body):
            self.selected.cancelReservation()
            Refusals.count(.endpoint)
            let code = (400...599).contains(status) ? status : 500
            return (HTTPResponseStatus(statusCode: code), body, true)
        }
    }

    /// Refuses a request whose parts were buffered while it was authenticated: answer now if its end is already
    /// in, else when it arrives.
    private func refuseAfterAuthentication(context: ChannelHandlerContext, head: HTTPRequestHead,
                                           buffered: [HTTPServerRequestPart], status: HTTPResponseStatus,
                                           message: String) {
        let ended = buffered.contains { if case .end = $0 { return true } else { return false } }
        self.state = .refusing(head: head, status: status, message: message, ended: ended)
        if ended { self.sendRefusal(context: context) }
    }

    /// The identity of the client certificate TLS verified, when the server verifies them (mTLS).
    static func clientCertificateIdentity(context: ChannelHandlerContext, verified: Bool) -> Identity? {
        guard verified, let tls = try? context.pipeline.syncOperations.handler(type: TLSServerHandler.self),
              let certificate = tls.peerCertificateDER() else {
            return nil
        }
        return TLSContextProvider.identity(ofDER: certificate)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // NIO's HTTPServerProtocolErrorHandler has already answered 400; it does not always close (a header-size
        // overflow left the connection open until the handshake timeout), so close here.
        if error is HTTPParserError {
            Refusals.count(.malformedHTTP)
            context.close(promise: nil)
        }
        context.fireErrorCaught(error)
    }

    /// Returns a refusal, or nil when the upgrade may go ahead (the endpoint is then stored in `selected`).
    private func checkHandshake(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String)? {
        let path = head.uri.requestPath
        if let problem = CanonicalPath.problem(with: path) {
            return (.badRequest, problem)
        }
        if self.configuration.isCaseVariantOfAPolicy(path) {
            return (.badRequest, "the path differs only in letter case from a route with a policy of its own")
        }
        let isBaseline = self.configuration.baselineEchoRoute.map { $0 == path } ?? false
        let endpoint = self.router.current.endpoint(forPath: path)
        guard endpoint != nil || isBaseline else {
            return (.notFound, "no WebSocket route at \(path)")
        }
        guard head.method == .GET else {
            return (.methodNotAllowed, "a WebSocket upgrade must be a GET request")
        }
        // NIO's upgrader holds an upgrade request's body in memory until the request ends: a handshake has no
        // body, so one announced is refused rather than buffered.
        guard !Self.announcesBody(head) else {
            return (.badRequest, "a WebSocket upgrade request has no body")
        }
        let policy = self.configuration.policy(forPath: path)
        if let allowed = policy.allowedOrigins {
            // Every Origin header is checked: a second one must not ride along behind an allowed first.
            for origin in head.headers["origin"] where !allowed.contains(origin) {
                return (.forbidden, "origin \(origin) may not open \(path)")
            }
        }
        guard head.headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" }) else {
            return (.badRequest, "only 'Upgrade: websocket' is served")
        }
        guard head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else {
            return (.badRequest, "a WebSocket upgrade needs 'Connection: Upgrade'")
        }
        let versions = head.headers["sec-websocket-version"]
        guard versions.count == 1, versions[0] == "13" else {
            return (.badRequest, "Sec-WebSocket-Version must be 13")
        }
        let keys = head.headers["sec-websocket-key"]
        guard keys.count == 1, Self.isValidKey(keys[0]) else {
            return (.badRequest, "Sec-WebSocket-Key must be 16 random bytes in base64")
        }
        let offered = head.headers[canonicalForm: "sec-websocket-protocol"].map { String($0) }
        let subprotocol = Self.selectSubprotocol(offered)
        guard offered.isEmpty || subprotocol != nil else {
            return (.badRequest, "offer a subprotocol (an HTTP token) beside the 'bearer.' entry that carries a token")
        }
        self.selected.endpoint = endpoint
        self.selected.subprotocol = subprotocol
        return nil
    }

    private static func announcesBody(_ head: HTTPRequestHead) -> Bool {
        let length = head.headers.first(name: "content-length")
        return !head.headers["transfer-encoding"].isEmpty || !(length == nil || length == "0")
    }

    /// RFC 6455 4.2.2: a server that answers a `Sec-WebSocket-Protocol` offer must select one of its entries (a
    /// browser fails the connection otherwise). The first entry that is a valid subprotocol and not a credential is
    /// chosen. A `bearer.` entry carries a token (see `TokenAuthenticator`): it is never selected, so it is neither
    /// echoed in the 101 (which proxies and browser tools log) nor handed to the plugin, whether or not it
    /// authenticated anyone. Entries that are not HTTP tokens (RFC 6455 4.1: quoted, bracketed, with spaces or
    /// non-ASCII) are never selected either: `"bearer.<token>"` is a credential in disguise as much as anything.
    static func selectSubprotocol(_ offered: [String]) -> String? {
        offered.first(where: Self.isSelectableSubprotocol)
    }

    /// An HTTP token that is not a credential: what may be selected (and shown to an endpoint).
    static func isSelectableSubprotocol(_ entry: String) -> Bool {
        !entry.isEmpty && entry.utf8.allSatisfy(Self.isTokenCharacter) && !entry.lowercased().hasPrefix("bearer")
    }

    /// RFC 7230 3.2.6 `tchar`.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    /// RFC 6455 4.1: the key is a base64-encoded 16-byte value, i.e. 22 base64 characters and "==".
    private static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        return bytes[..<22].allSatisfy { byte in
            (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57)
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
        }
    }

    private func refuse(_ head: HTTPRequestHead, _ status: HTTPResponseStatus, _ message: String) {
        self.state = .refusing(head: head, status: status, message: message, ended: false)
    }

    private func sendRefusal(context: ChannelHandlerContext) {
        guard case .refusing(let head, let status, let message, true, let raw) = self.state else { return }
        self.state = .idle
        var extraHeaders: [(String, String)] = []
        if status == .unauthorized { extraHeaders.append(("www-authenticate", #"Bearer realm="agenthost""#)) }
        // An endpoint's own body goes out as it wrote it: JSON if it looks like JSON, else plain text.
        let looksLikeJSON = message.first { !$0.isWhitespace }.map { $0 == "{" || $0 == "[" } ?? false
        HTTPResponseWriter.write(context: context, version: head.version, method: head.method, status: status,
                                 body: raw ? message : HTTPResponseWriter.errorBody(message), keepAlive: false,
                                 extraHeaders: extraHeaders,
                                 contentType: raw && !looksLikeJSON ? "text/plain; charset=utf-8" : "application/json")
    }
}

/// What the guard chose for a connection, carried to the upgrader's callbacks for the same connection.
final class SelectedEndpoint: @unchecked Sendable {
    // @unchecked: written and read only on the connection's event loop, in that order.
    var endpoint: (any WebSocketEndpoint)?
    var identity: Identity = .anonymous
    var subprotocol: String?
    /// The endpoint holds a reservation for this connection until the WebSocket handler opens its session.
    var reservation: (any WebSocketEndpoint)?

    /// Reserves the chosen endpoint; false if it is being retired (a reload replaced it a moment ago).
    func reserve() -> Bool {
        guard let endpoint = self.endpoint else { return true }  // the built-in baseline route
        guard endpoint.reserve() else { return false }
        self.reservation = endpoint
        return true
    }

    /// The WebSocket handler takes the reservation over (its `openSession` consumes it).
    func handOver() {
        self.reservation = nil
    }

    /// The upgrade will not happen (the endpoint refused it): the reservation goes back now.
    func cancelReservation() {
        self.reservation?.cancelReservation()
        self.reservation = nil
    }

    deinit {
        // The connection ended before its session opened: give the reservation back.
        self.reservation?.cancelReservation()
    }
}
