import Glibc
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import ServiceLifecycle
import Synchronization

/// The listening server: HTTP/1.1 with the WebSocket upgrade, routes from a `Router`, graceful shutdown.
///
/// Run it as a `Service` in a `ServiceGroup`: `run()` binds, calls `onListening` with the bound address, serves
/// until graceful shutdown is triggered, then stops accepting, closes every WebSocket with 1001 and waits up to
/// `shutdownTimeout` for the close handshakes before dropping what is left.
public final class AgentHostServer: Service, Sendable {
    /// The configuration in service: what the next connection gets (`update` replaces it; open connections keep
    /// what they started with).
    public var configuration: ServerConfiguration { self.live.withLock { $0.configuration } }
    private struct Live {
        var configuration: ServerConfiguration
        /// The WebSocket settings connections share, made once per configuration.
        var settings: ConnectionSettings
    }
    private let live: Mutex<Live>
    public let router: Router
    /// Names connections for plugins (process-wide).
    public let registry: ConnectionRegistry
    /// This server's open WebSockets.
    public let connections: OpenConnections
    private let group: any EventLoopGroup
    private let logger: Logger
    private let onListening: @Sendable (SocketAddress) -> Void
    private let adminRoutes: [String: any AdminRoute]
    private let identityRoutes: IdentityRoutes
    private let sweepers: KeepAliveSweepers
    private let limiter: ConnectionLimiter
    private let serverChannel = Mutex<(any Channel)?>(nil)

    public init(configuration: ServerConfiguration, router: Router, registry: ConnectionRegistry = .init(),
                group: any EventLoopGroup, logger: Logger, adminRoutes: [String: any AdminRoute] = [:],
                connections: OpenConnections = OpenConnections(),
                identityRoutes: IdentityRoutes = IdentityRoutes(),
                onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }) {
        self.adminRoutes = adminRoutes
        self.connections = connections
        self.identityRoutes = identityRoutes
        self.live = Mutex(Live(configuration: configuration, settings: ConnectionSettings(
            configuration.webSocket, registry: registry, openConnections: connections, logger: logger)))
        self.router = router
        self.registry = registry
        self.group = group
        self.logger = logger
        self.onListening = onListening
        self.sweepers = KeepAliveSweepers(configuration: configuration.webSocket)
        self.limiter = ConnectionLimiter(maxTotal: configuration.maxConnections,
                                         maxPerAddress: configuration.maxConnectionsPerAddress)
    }

    /// Puts a reloaded configuration in service for the connections that arrive from now on: limits, WebSocket
    /// settings, route policies, the authenticator, admin access. What the listening socket was made with (address,
    /// TLS on or off, worker identity, the baseline route) keeps its value until a restart; the caller says which of
    /// those the new configuration would change (the settings catalog knows them).
    public func update(_ next: ServerConfiguration) {
        var next = next
        self.live.withLock { live in
            let current = live.configuration
            next.host = current.host
            next.port = current.port
            next.reusePort = current.reusePort
            next.workerHeader = current.workerHeader
            next.tls = current.tls  // certificates reload on SIGHUP on their own
            next.baselineEchoRoute = current.baselineEchoRoute
            live = Live(configuration: next, settings: ConnectionSettings(
                next.webSocket, registry: self.registry, openConnections: self.connections, logger: self.logger))
        }
        self.limiter.update(maxTotal: next.maxConnections, maxPerAddress: next.maxConnectionsPerAddress)
    }

    /// Access on plain HTTP requests, from the configuration in service now (each request reads it again).
    var httpAccess: HTTPAccess {
        let configuration = self.configuration
        return HTTPAccess(adminToken: configuration.adminToken, adminTrustsLoopback: configuration.adminTrustsLoopback,
                          authenticator: configuration.authenticators,
                          verifiesClientCertificates: configuration.tls?.settings.clientCAFile != nil)
    }

    /// The bound address, once listening.
    public var localAddress: SocketAddress? { self.serverChannel.withLock { $0?.localAddress } }

    public func run() async throws {
        let channel = try await self.bind()
        self.serverChannel.withLock { $0 = channel }
        guard let address = channel.localAddress else { throw ServerError.noLocalAddress }
        self.logger.info("listening", metadata: ["address": "\(address)"])
        self.onListening(address)

        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
        try await self.drainConnections()
    }

    private func bind() async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT),
                                 value: self.configuration.reusePort ? 1 : 0)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // An idle WebSocket keeps the storage of its last read alive (NIO's read-buffer pool holds it):
            // NIO's first read of 2 KiB cost every idle connection 2 KiB. Starting at 256 bytes saves ~1.7 KiB per
            // idle connection (measured by agenthost-bench: ws 6.40 -> 4.64 KiB) and the allocator still grows the
            // buffer after reads that fill it, up to NIO's usual 64 KiB (echo at 4 KiB measured the same).
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536))
            .childChannelOption(.writeBufferWaterMark, value: .init(
                low: self.configuration.webSocket.outboundLowWatermark,
                high: self.configuration.webSocket.outboundHighWatermark))
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.configurePipeline(channel) }
            }
        return try await bootstrap.bind(host: self.configuration.host, port: self.configuration.port).get()
    }

    private func configurePipeline(_ channel: any Channel) throws {
        // One snapshot per connection: a reload in the middle of its set-up does not mix two configurations.
        let (configuration, settings) = self.live.withLock { ($0.configuration, $0.settings) }
        try channel.syncOptions?.setOption(.writeBufferWaterMark, value: .init(
            low: configuration.webSocket.outboundLowWatermark, high: configuration.webSocket.outboundHighWatermark))
        let address = ClientAddressKey.key(for: channel.remoteAddress?.ipAddress ?? "")
        let admission = self.limiter.admit(address)
        if admission == .admitted {
            channel.closeFuture.whenComplete { [limiter] _ in limiter.release(address) }
        } else {
            self.logger.debug("connection refused", metadata: ["peer": "\(address)", "reason": "\(admission)"])
        }
        if let tls = configuration.tls {
            // TLS first: everything after it, the handshake timeout included, sees plaintext.
            try channel.pipeline.syncOperations.addHandler(TLSServerHandler(context: tls.current))
        }
        let deadline = RequestDeadlineHandler(handshakeTimeout: configuration.handshakeTimeout)
        let selected = SelectedEndpoint()
        let upgrader = WebSocketUpgrader(
            shouldUpgrade: { [configuration] channel, _ in
                // UpgradeRequestGuard already checked the route, the handshake, the origin and the credentials.
                var headers = HTTPHeaders()
                if let subprotocol = selected.subprotocol { headers.add(name: "sec-websocket-protocol", value: subprotocol) }
                if let worker = configuration.workerHeader { headers.add(name: "agenthost-worker", value: worker) }
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { [self] channel, head in
                channel.eventLoop.makeCompletedFuture {
                    channel.pipeline.removeHandler(name: RequestDeadlineHandler.name, promise: nil)
                    channel.pipeline.removeHandler(name: UpgradeRequestGuard.name, promise: nil)
                    guard let endpoint = selected.endpoint else {
                        guard let baseline = configuration.baselineEchoRoute, head.uri.requestPath == baseline else {
                            throw ServerError.noEndpoint
                        }
                        // The bare NIO baseline reads and writes `WebSocketFrame`s through NIO's decoder and encoder,
                        // as a NIO app would; plugin routes go without them (see WebSocketUpgrader).
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: configuration.webSocket.maxFrameSize)))
                        try channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder())
                        try channel.pipeline.syncOperations.addHandler(BaselineEchoHandler())
                        return
                    }
                    selected.handOver()
                    let handler = WebSocketConnectionHandler(
                        endpoint: endpoint, info: Self.connectionInfo(channel: channel, head: head, selected: selected),
                        settings: settings, sweeper: self.sweepers.sweeper(for: channel.eventLoop))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            })
        let loopBoundDeadline = NIOLoopBound(deadline, eventLoop: channel.eventLoop)
        var pipelineConfiguration = NIOUpgradableHTTPServerPipelineConfiguration(
            upgradeConfiguration: .init(upgraders: [upgrader]) { [router, adminRoutes, identityRoutes, configuration] channel in
                channel.eventLoop.makeCompletedFuture {
                    // A plain HTTP connection: the deadline handler stays, timing each request and the idle time
                    // between them.
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPRequestHandler(router: router, adminRoutes: adminRoutes, identityRoutes: identityRoutes,
                                           limits: configuration.http, deadline: loopBoundDeadline.value,
                                           access: { [self] in self.httpAccess }))
                }
            })
        pipelineConfiguration.decoderConfiguration.maxHeaderListSize = configuration.maxHeaderSize
        pipelineConfiguration.decoderConfiguration.maxHeaderFieldSize = configuration.maxHeaderSize
        try channel.pipeline.syncOperations.addHandler(deadline, name: RequestDeadlineHandler.name)
        _ = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipelineConfiguration)
        // The guard must see requests before the upgrader does: put it right in front of it.
        let upgradeHandler = try channel.pipeline.syncOperations.handler(type: NIOTypedHTTPServerUpgradeHandler<Void>.self)
        let guardHandler = UpgradeRequestGuard(router: self.router, selected: selected,
                                               configuration: configuration, admission: admission,
                                               logger: self.logger)
        try channel.pipeline.syncOperations.addHandler(guardHandler, name: UpgradeRequestGuard.name,
                                                       position: .before(upgradeHandler))
    }

    private static func connectionInfo(channel: any Channel, head: HTTPRequestHead, selected: SelectedEndpoint)
        -> ConnectionInfo
    {
        ConnectionInfo(route: String(head.uri.requestPath), requestTarget: Self.withoutToken(head.uri),
                              remoteAddress: PeerAddress.text(channel.remoteAddress), subprotocol: selected.subprotocol, identity: selected.identity)
    }

    /// The request target as plugins see it: a `token` query parameter (a credential) is removed.
    static func withoutToken(_ target: String) -> String {
        guard let query = target.firstIndex(of: "?") else { return target }
        let kept = target[target.index(after: query)...].split(separator: "&").filter {
            !$0.hasPrefix("token=") && $0 != "token"
        }
        return String(target[..<query]) + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&"))
    }

    /// Closes every WebSocket with 1001 and waits for the handshakes, then drops whatever is left.
    private func drainConnections() async throws {
        self.connections.beginShutdown()
        let open = self.connections.all
        self.logger.info("shutting down", metadata: ["open_websockets": "\(open.count)"])
        for connection in open { _ = connection.close(code: CloseCode.goingAway, reason: "server shutting down") }
        let connections = self.connections
        let deadline = ContinuousClock.now + .nanoseconds(self.configuration.shutdownTimeout.nanoseconds)
        // Upgrades already answered but not yet registered land within moments: give them that moment.
        let settle = min(deadline, ContinuousClock.now + .milliseconds(100))
        // Wait (woken by each close) until none is open; if that happens before the settle time, wait out the
        // settle time and look again, since a late upgrade may have registered meanwhile. Stops at the deadline.
        while await connections.removed.wait(until: deadline, for: { connections.count == 0 }),
            ContinuousClock.now < settle
        {
            try? await Task.sleep(until: settle, clock: .continuous)
        }
        let remaining = connections.all
        if !remaining.isEmpty {
            self.logger.warning("shutdown deadline passed", metadata: ["dropped": "\(remaining.count)"])
            for connection in remaining { connection.abort() }
            // Plain HTTP connections still open are closed with the event loop group by the caller.
            await connections.removed.wait { connections.count == 0 }
        }
        self.logger.info("stopped")
    }
}

public enum ServerError: Error, CustomStringConvertible {
    case noLocalAddress
    case noEndpoint

    public var description: String {
        switch self {
        case .noLocalAddress: return "the listening socket has no local address"
        case .noEndpoint: return "no endpoint was selected for the upgraded connection"
        }
    }
}
