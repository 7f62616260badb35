import NIOCore
import NIOHTTP1

/// Answers the plain HTTP requests of a connection that did not upgrade: the health check, and clear refusals for
/// everything else. Upgrade refusals are `UpgradeRequestGuard`'s.
///
/// Malformed HTTP never reaches this handler: NIO's `HTTPServerProtocolErrorHandler` answers it with 400 and
/// closes the connection.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: Router
    private let adminRoutes: [String: any AdminRoute]
    private let adminToken: String?
    private var request: HTTPRequestHead?

    init(router: Router, adminRoutes: [String: any AdminRoute] = [:], adminToken: String? = nil) {
        self.router = router
        self.adminRoutes = adminRoutes
        self.adminToken = adminToken
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.request = head
        case .body:
            break  // no route here takes a body; it is read and dropped
        case .end:
            guard let head = self.request else { return }
            self.request = nil
            if let route = self.adminRoutes[String(head.uri.requestPath)] {
                self.answerAdmin(context: context, head: head, route: route)
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
        guard AdminAccess.allows(remoteIP: context.channel.remoteAddress?.ipAddress,
                                 authorization: head.headers.first(name: "authorization"), token: self.adminToken)
        else {
            self.respond(context: context, head: head, status: .forbidden,
                         body: #"{"error":"admin routes answer loopback peers or the admin token"}"#)
            return
        }
        let promise = context.eventLoop.makePromise(of: String.self)
        promise.completeWithTask { await route.respond() }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let contentType = route.contentType
        promise.futureResult.whenSuccess { body in
            let (_, context) = loopBound.value
            HTTPResponseWriter.write(context: context, version: head.version, method: head.method, status: .ok,
                                     body: body, keepAlive: head.isKeepAlive, contentType: contentType)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus,
                         body: String) {
        HTTPResponseWriter.write(context: context, version: head.version, method: head.method, status: status,
                                 body: body, keepAlive: head.isKeepAlive && status.code < 400)
    }
}
