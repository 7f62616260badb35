import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import AgentHostCore

/// The deadlines of a plain HTTP connection, on an EmbeddedChannel whose clock the test moves.
@Suite("HTTP request deadlines")
struct HTTPRequestDeadlineTests {
    /// Holds every write's promise: a socket whose peer does not read.
    final class StalledSocket: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var held: [EventLoopPromise<Void>?] = []
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            self.held.append(promise)
        }
    }

    static func connection(stalled: Bool) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        var limits = HTTPLimits()
        limits.requestTimeout = .milliseconds(500)
        limits.keepAliveTimeout = .seconds(5)
        let deadline = RequestDeadlineHandler(handshakeTimeout: .seconds(10))
        try channel.pipeline.syncOperations.addHandler(deadline)
        if stalled { try channel.pipeline.syncOperations.addHandler(StalledSocket()) }
        try channel.pipeline.syncOperations.addHandler(
            HTTPRequestHandler(router: Router(), limits: limits, deadline: deadline))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return channel
    }

    static func ask(_ channel: EmbeddedChannel) throws {
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/healthz")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    /// Before, no deadline ran from a request's end until its answer was written: a client that pipelines requests
    /// and never reads their answers stalls the writes and held its connection for ever.
    @Test func anAnswerThatCannotBeWrittenEndsTheConnectionAtTheRequestTimeout() throws {
        let channel = try Self.connection(stalled: true)
        try Self.ask(channel)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(400))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(!channel.isActive)
    }

    @Test func anAnsweredConnectionGetsTheKeepAliveTimeToAskAgain() throws {
        let channel = try Self.connection(stalled: false)
        try Self.ask(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        try Self.ask(channel)  // a new request: the keep-alive time starts again after its answer
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }
}
