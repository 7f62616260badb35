import NIOCore
import NIOPosix

/// A private unix socket on which a worker (or the supervisor) answers its siblings' admin questions: the client
/// writes one line (`plugins`, `metrics`, `health`, `workers`), the server writes the answer and closes. The
/// socket lives in the supervisor's 0700 directory: only the same user reaches it.
public final class PeerAdminServer: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Binds `path` (replacing a socket a dead predecessor left there) and answers with `answer`; an unknown
    /// question gets an empty answer.
    public static func start(path: String, group: any EventLoopGroup,
                             answer: @escaping @Sendable (String) async -> String) async throws -> PeerAdminServer {
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(QuestionHandler(answer: answer))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        return PeerAdminServer(channel: channel)
    }

    public func close() {
        self.channel.close(promise: nil)
    }

    private final class QuestionHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private let answer: @Sendable (String) async -> String
        private var received = ByteBuffer()
        private var asked = false

        init(answer: @escaping @Sendable (String) async -> String) {
            self.answer = answer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !self.asked else { return }
            var chunk = Self.unwrapInboundIn(data)
            self.received.writeBuffer(&chunk)
            guard let newline = self.received.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                if self.received.readableBytes > 256 { context.close(promise: nil) }
                return
            }
            self.asked = true
            let question = String(decoding: self.received.readableBytesView[..<newline], as: UTF8.self)
            let promise = context.eventLoop.makePromise(of: String.self)
            promise.completeWithTask { [answer = self.answer] in await answer(question) }
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { body in
                let context = loopBound.value
                let channel = context.channel
                let buffer = channel.allocator.buffer(string: body)
                context.writeAndFlush(Self.wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}

/// Asks a `PeerAdminServer` one question.
public enum PeerAdminClient {
    public struct NoAnswer: Error, CustomStringConvertible {
        public var description: String
    }

    /// The answer, or `NoAnswer` when nothing listens at `path` or the answer did not come within `timeout`
    /// (a sibling that is restarting, or stuck in a plugin callback).
    public static func ask(_ question: String, at path: String, group: any EventLoopGroup,
                           timeout: TimeAmount = .seconds(2)) async throws -> String {
        let collected = group.next().makePromise(of: String.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(AnswerCollector(promise: collected))
                    }
                }
                .connect(unixDomainSocketPath: path).get()
        } catch {
            collected.fail(NoAnswer(description: "cannot connect: \(error)"))
            throw NoAnswer(description: "cannot connect to \(path): \(error)")
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            collected.fail(NoAnswer(description: "no answer within \(timeout)"))
            channel.close(promise: nil)
        }
        channel.writeAndFlush(channel.allocator.buffer(string: question + "\n"), promise: nil)
        defer { timer.cancel() }
        return try await collected.futureResult.get()
    }

    private final class AnswerCollector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        private let promise: EventLoopPromise<String>
        private var received = ByteBuffer()

        init(promise: EventLoopPromise<String>) {
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = Self.unwrapInboundIn(data)
            self.received.writeBuffer(&chunk)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.promise.succeed(String(buffer: self.received))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
