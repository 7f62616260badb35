import NIOCore
import NIOHTTP1

/// Looks at a WebSocket upgrade request before NIO's upgrader does, and answers the ones that must be refused
/// with a proper HTTP status: an unknown route (404) or a malformed handshake (400). It also chooses the endpoint,
/// so the route table read here is the one the connection is served by.
///
/// It exists because NIO's typed upgrader, when no upgrader accepts a request that asked to upgrade, consumes the
/// request without passing it on: nothing after it could answer. This is also where checks that must happen before
/// the upgrade belong (authentication, origin, limits).
final class UpgradeRequestGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    static let name = "upgrade-request-guard"

    private let router: Router
    private let selected: SelectedEndpoint
    private let baselineEchoRoute: String?
    private let admission: ConnectionLimiter.Decision
    private let configuration: ServerConfiguration
    /// The request being refused: its remaining parts are dropped, and the answer goes out at its end.
    private var refusal: (head: HTTPRequestHead, status: HTTPResponseStatus, message: String)?

    init(router: Router, selected: SelectedEndpoint, configuration: ServerConfiguration,
         admission: ConnectionLimiter.Decision) {
        self.router = router
        self.selected = selected
        self.baselineEchoRoute = configuration.baselineEchoRoute
        self.configuration = configuration
        self.admission = admission
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = Self.unwrapInboundIn(data)
        if self.refusal != nil {
            if case .end = part { self.sendRefusal(context: context) }
            return
        }
        if case .head(let head) = part, self.admission != .admitted {
            // Over a connection limit: whatever is asked, the answer is no, and the connection closes.
            self.refusal = self.admission == .tooManyTotal
                ? (head, .serviceUnavailable, "the server is at its connection limit; retry later")
                : (head, .tooManyRequests, "too many connections from your address")
            return
        }
        guard case .head(let head) = part, head.headers.contains(name: "upgrade") else {
            context.fireChannelRead(data)
            return
        }
        if let (status, message) = self.check(head) {
            self.refusal = (head, status, message)
            return
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // NIO's HTTPServerProtocolErrorHandler has already answered 400; it does not always close (a header-size
        // overflow left the connection open until the handshake timeout), so close here.
        if error is HTTPParserError { context.close(promise: nil) }
        context.fireErrorCaught(error)
    }

    /// Returns a refusal, or nil when the upgrade may go ahead (the endpoint is then stored in `selected`).
    private func check(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String)? {
        let path = head.uri.requestPath
        let isBaseline = self.baselineEchoRoute.map { $0 == path } ?? false
        let endpoint = self.router.current.endpoint(forPath: path)
        guard endpoint != nil || isBaseline else {
            return (.notFound, "no WebSocket route at \(path)")
        }
        guard head.method == .GET else {
            return (.methodNotAllowed, "a WebSocket upgrade must be a GET request")
        }
        let policy = self.configuration.routePolicies[String(path)] ?? self.configuration.defaultRoutePolicy
        if let allowed = policy.allowedOrigins, let origin = head.headers.first(name: "origin"),
            !allowed.contains(origin)
        {
            return (.forbidden, "origin \(origin) may not open \(path)")
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
        self.selected.endpoint = endpoint
        return nil
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

    private func sendRefusal(context: ChannelHandlerContext) {
        guard let refusal = self.refusal else { return }
        self.refusal = nil
        HTTPResponseWriter.write(context: context, version: refusal.head.version, method: refusal.head.method,
                                 status: refusal.status, body: HTTPResponseWriter.errorBody(refusal.message),
                                 keepAlive: false)
    }
}

/// The endpoint the guard chose, carried to the upgrader's pipeline callback for the same connection, so a route
/// table swapped in between cannot change a connection's endpoint halfway through its handshake.
final class SelectedEndpoint: @unchecked Sendable {
    // @unchecked: written and read only on the connection's event loop, in that order.
    var endpoint: (any WebSocketEndpoint)?
}
