import NIOCore
import NIOHTTP1

/// Writes a complete small JSON response; shared by the handlers that answer plain HTTP.
enum HTTPResponseWriter {
    /// Returns when the response is written (before the connection is closed, when it is not kept alive).
    @discardableResult
    static func write(context: ChannelHandlerContext, version: HTTPVersion, method: HTTPMethod,
                      status: HTTPResponseStatus, body: String, keepAlive: Bool,
                      extraHeaders: [(String, String)] = [],
                      contentType: String = "application/json") -> EventLoopFuture<Void> {
        var headers = HTTPHeaders(extraHeaders)
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(body.utf8.count)")
        if status == .upgradeRequired || status == .badRequest {
            headers.add(name: "sec-websocket-version", value: "13")
        }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: status, headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        if method != .HEAD {
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        }
        let done = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !keepAlive {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
        return done
    }

    static func errorBody(_ message: String) -> String {
        #"{"error":"# + JSONText.quoted(message) + "}"
    }
}
