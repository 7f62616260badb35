import NIOCore
import NIOHTTP1
import NIOWebSocket

/// NIO's WebSocket server upgrader without its frame encoder and decoder.
///
/// NIO's upgrader adds `WebSocketFrameEncoder` and `ByteToMessageHandler(WebSocketFrameDecoder)` to every upgraded
/// pipeline. Plugin routes write finished frames themselves (`WebSocketFrameWriter`) and read frames in their own
/// handler (`WebSocketFrameParser`), so there the two handlers, their contexts and buffers were ~560 bytes of every
/// idle connection for nothing; the pipeline handler adds them where NIO's frames are wanted (the bare NIO
/// baseline). The answer to the handshake (the key and version checks, the accept header) is still NIO's:
/// `buildUpgradeResponse` is delegated.
struct WebSocketUpgrader: NIOTypedHTTPServerProtocolUpgrader {
    typealias UpgradeResult = Void

    private let handshake: NIOTypedWebSocketServerUpgrader<Void>
    private let upgradePipelineHandler: @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<Void>

    init(shouldUpgrade: @escaping @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?>,
         upgradePipelineHandler: @escaping @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<Void>) {
        // Only its handshake answer is used; `upgrade` below builds the pipeline, so NIO's frame-size setting (which
        // only its decoder reads) is left at its default: the maximum is enforced where frames are read.
        self.handshake = NIOTypedWebSocketServerUpgrader<Void>(
            enableAutomaticErrorHandling: false, shouldUpgrade: shouldUpgrade,
            upgradePipelineHandler: { channel, _ in channel.eventLoop.makeSucceededVoidFuture() })
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
        self.upgradePipelineHandler(channel, upgradeRequest)
    }
}
