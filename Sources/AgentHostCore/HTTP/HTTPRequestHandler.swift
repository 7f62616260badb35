import NIOCore
import NIOHTTP1

/// Answers the plain HTTP requests of a connection that did not upgrade: the health check, and clear refusals for
/// everything else. Upgrade refusals are `UpgradeRequestGuard`'s.
///
/// Malformed HTTP never reaches this handler: NIO's `HTTPServerProtocolErrorHandler` answers it with 400 and
/// closes the connection.
///
/// It keeps the connection's `RequestDeadlineHandler` informed, so a slow body or an idle kept-alive connection is
/// closed, and refuses bodies over `maxBodySize` with 413 (no route here takes a body: what comes is dropped).
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: Router
    private let adminRoutes: [String: any AdminRoute]
    /// Who may ask what, read again for every request: a keep-alive connection must not keep an admin token or an
    /// API key a config reload revoked.
    private let access: @Sendable () -> HTTPAccess
    private let identityRoutes: IdentityRoutes
    private let limits: HTTPLimits
    private let deadline: RequestDeadlineHandler?
    private var request: HTTPRequestHead?
    private var bodyBytes = 0
    /// Set once a request was refused for its size: the rest of the connection is ignored until it closes.
    private var refused = false
    /// Counts request heads, so an answer finished late does not re-arm the keep-alive deadline of a newer request.
    private var requestsSeen = 0

    init(router: Router, adminRoutes: [String: any AdminRoute] = [:], adminToken: String? = nil,
         adminTrustsLoopback: Bool = false, identityRoutes: IdentityRoutes = IdentityRoutes(),
         authenticator: (any ConnectionAuthenticator)? = nil, limits: HTTPLimits = HTTPLimits(),
         deadline: RequestDeadlineHandler? = nil, verifiesClientCertificates: Bool = false,
         access: (@Sendable () -> HTTPAccess)? = nil) {
        let fixed = HTTPAccess(adminToken: adminToken, adminTrustsLoopback: adminTrustsLoopback,
                               authenticator: authenticator, verifiesClientCertificates: verifiesClientCertificates)
        self.access = access ?? { fixed }
        self.identityRoutes = identityRoutes
        self.router = router
        self.adminRoutes = adminRoutes
        self.limits = limits
        self.deadline = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.refused else { return }
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.request = head
            self.bodyBytes = 0
            self.requestsSeen += 1
            // The head is in; the body (if any) gets the request timeout.
            self.deadline?.arm(.request, in: self.limits.requestTimeout)
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > self.limits.maxBodySize {
                self.refuseTooLarge(context: context, head: head)
            }
        case .body(let chunk):
            self.bodyBytes += chunk.readableBytes  // no route here takes a body; it is counted and dropped
            if self.bodyBytes > self.limits.maxBodySize, let head = self.request {
                self.refuseTooLarge(context: context, head: head)
            }
        case .end:
            guard let head = self.request else { return }
            self.request = nil
            // The answer must be out within the request timeout too: a client that stops reading (its pipelined
            // requests' answers filling the socket) must not hold the connection by never letting a write finish.
            self.deadline?.arm(.request, in: self.limits.requestTimeout)
            if let route = self.adminRoutes[String(head.uri.requestPath)] {
                self.answerAdmin(context: context, head: head, route: route)
                return
            }
            if let route = self.identityRoutes.route(for: head.uri.requestPath), !head.headers.contains(name: "upgrade") {
                self.answerIdentity(context: context, head: head, route: route)
                return
            }
            let (status, body) = self.answer(head)
            self.respond(context: context, head: head, status: status, body: body)
        }
    }

    private func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String) {
        let path = head.uri.requestPath
        if head.headers.contains(name: "upgrade") {
            // Only the first request of a connection may upgrade (UpgradeRequestGuard vets that one).
            return (.badRequest, #"{"error":"upgrade only on the first request of a connection"}"#)
        }
        switch path {
        case "/healthz":
            guard head.method == .GET || head.method == .HEAD else {
                return (.methodNotAllowed, #"{"error":"use GET"}"#)
            }
            return (.ok, #"{"status":"ok"}"#)
        default:
            if self.router.current.endpoint(forPath: path) != nil {
                return (.upgradeRequired, #"{"error":"this route speaks WebSocket only"}"#)
            }
            return (.notFound, #"{"error":"not found"}"#)
        }
    }

    private func answerAdmin(context: ChannelHandlerContext, head: HTTPRequestHead, route: any AdminRoute) {
        guard head.method == .GET || head.method == .HEAD else {
            self.respond(context: context, head: head, status: .methodNotAllowed, body: #"{"error":"use GET"}"#)
            return
        }
        let access = self.access()
        guard AdminAccess.allows(remoteIP: context.channel.remoteAddress?.ipAddress,
                                 authorization: head.headers.first(name: "authorization"), token: access.adminToken,
                                 trustLoopback: access.adminTrustsLoopback)
        else {
            Refusals.count(.forbidden)
            self.respond(context: context, head: head, status: .forbidden,
                         body: #"{"error":"admin routes need 'Authorization: Bearer <admin_token>'"}"#)
            return
        }
        let promise = context.eventLoop.makePromise(of: String.self)
        promise.completeWithTask { await route.respond() }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let contentType = route.contentType
        promise.futureResult.whenSuccess { body in
            let (handler, context) = loopBound.value
            let done = HTTPResponseWriter.write(context: context, version: head.version, method: head.method,
                                                status: .ok, body: body, keepAlive: head.isKeepAlive,
                                                contentType: contentType)
            if head.isKeepAlive { handler.awaitNextRequest(after: done) }
        }
    }

    /// An identity route: the caller authenticates as on the WebSocket routes; a rejected credential is 401.
    private func answerIdentity(context: ChannelHandlerContext, head: HTTPRequestHead, route: any IdentityRoute) {
        guard head.method == .GET || head.method == .HEAD else {
            self.respond(context: context, head: head, status: .methodNotAllowed, body: #"{"error":"use GET"}"#)
            return
        }
        let access = self.access()
        let authenticator = access.authenticator
        let request = AuthenticationRequest(head: head, clientCertificate: UpgradeRequestGuard.clientCertificateIdentity(
            context: context, verified: access.verifiesClientCertificates))
        let promise = context.eventLoop.makePromise(of: IdentityRouteResponse.self)
        promise.completeWithTask {
            var result = AuthenticationResult.anonymous
            if let authenticator { result = await authenticator.authenticate(request) }
            let identity: Identity?
            switch result {
            case .anonymous: identity = nil
            case .authenticated(let who, _): identity = who
            case .rejected(let reason):
                return IdentityRouteResponse(status: .unauthorized, body: HTTPResponseWriter.errorBody(reason))
            }
            let uri = head.uri
            let query = uri.firstIndex(of: "?").map { String(uri[uri.index(after: $0)...]) }
            return await route.respond(path: String(uri.requestPath), query: query, identity: identity)
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { response in
            let (handler, context) = loopBound.value
            handler.respond(context: context, head: head, status: response.status, body: response.body)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus,
                         body: String) {
        let keepAlive = head.isKeepAlive && status.code < 400
        let done = HTTPResponseWriter.write(context: context, version: head.version, method: head.method,
                                            status: status, body: body, keepAlive: keepAlive)
        if keepAlive { self.awaitNextRequest(after: done) }
    }

    /// Once the answer is out, the client has the keep-alive timeout to send its next request's head.
    private func awaitNextRequest(after written: EventLoopFuture<Void>) {
        let answered = self.requestsSeen
        let loopBound = NIOLoopBound(self, eventLoop: written.eventLoop)
        written.whenSuccess {
            let handler = loopBound.value
            // A pipelined request may already be in (its head re-armed the deadline for its body).
            guard handler.requestsSeen == answered, handler.request == nil else { return }
            handler.deadline?.arm(.keepAlive, in: handler.limits.keepAliveTimeout)
        }
    }

    private func refuseTooLarge(context: ChannelHandlerContext, head: HTTPRequestHead) {
        self.refused = true
        self.request = nil
        self.deadline?.arm(.request, in: self.limits.requestTimeout)  // for the answer to get out
        Refusals.count(.tooLarge)
        HTTPResponseWriter.write(context: context, version: head.version, method: head.method, status: .payloadTooLarge,
                                 body: HTTPResponseWriter.errorBody("request bodies over \(self.limits.maxBodySize) bytes are refused"),
                                 keepAlive: false)
    }
}

/// What decides access on plain HTTP requests: the admin token and loopback trust for admin routes, the
/// authenticators for identity routes.
struct HTTPAccess: Sendable {
    var adminToken: String?
    var adminTrustsLoopback: Bool
    var authenticator: (any ConnectionAuthenticator)?
    var verifiesClientCertificates: Bool
}
