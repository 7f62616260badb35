import NIOCore
import NIOHTTP1
import NIOWebSocket

/// NIO's WebSocket server upgrader without its frame encoder.
///
/// NIO's upgrader adds `WebSocketFrameEncoder` to every upgraded pipeline, and the encoder cannot be removed again.
/// Plugin routes write finished frames themselves (`WebSocketFrameWriter`), so there the encoder, its handler context
/// and the buffer it allocates when added were ~225 bytes of every idle connection for nothing; the pipeline handler
/// adds it where frames are written as `WebSocketFrame`s (the bare NIO baseline). The answer to the
/// handshake (the key and version checks, the accept header) is still NIO's: `buildUpgradeResponse` is delegated.
/// The frame decoder is NIO's too, added as NIO adds it (automatic error handling off: the handler answers errors).
struct WebSocketUpgrader: NIOTypedHTTPServerProtocolUpgrader {
    typealias UpgradeResult = Void

    private let handshake: NIOTypedWebSocketServerUpgrader<Void>
    private let maxFrameSize: Int
    private let upgradePipelineHandler: @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<Void>

    init(maxFrameSize: Int,
         shouldUpgrade: @escaping @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?>,
         upgradePipelineHandler: @escaping @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<Void>) {
        // Only its handshake answer is used; `upgrade` below builds the pipeline.
        self.handshake = NIOTypedWebSocketServerUpgrader<Void>(
            maxFrameSize: maxFrameSize, enableAutomaticErrorHandling: false, shouldUpgrade: shouldUpgrade,
            upgradePipelineHandler: { channel, _ in channel.eventLoop.makeSucceededVoidFuture() })
        self.maxFrameSize = maxFrameSize
        self.upgradePipelineHandler = upgradePipelineHandler
    }

    var supportedProtocol: String { self.handshake.supportedProtocol }
    var requiredUpgradeHeaders: [String] { self.handshake.requiredUpgradeHeaders }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead,
                              initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        self.handshake.buildUpgradeResponse(channel: channel, upgradeRequest: upgradeRequest,
                                            initialResponseHeaders: initialResponseHeaders)
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: self.maxFrameSize)))
        }.flatMap {
            self.upgradePipelineHandler(channel, upgradeRequest)
        }
    }
}
