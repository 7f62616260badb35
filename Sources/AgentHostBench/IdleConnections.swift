import NIOCore
import NIOPosix
import NIOSSL

/// Opens many WebSockets that then sit idle, to measure what an idle connection costs the server.
enum IdleConnections {
    /// - Parameter tls: a client context to speak wss with (nil: plain ws).
    static func open(count: Int, port: Int, path: String, tls: NIOSSLContext? = nil, group: any EventLoopGroup)
        async throws -> [any Channel]
    {
        var channels: [any Channel] = []
        channels.reserveCapacity(count)
        let batch = 250
        var opened = 0
        while opened < count {
            let size = min(batch, count - opened)
            try await withThrowingTaskGroup(of: (any Channel).self) { tasks in
                for _ in 0..<size {
                    tasks.addTask {
                        let handshake = group.next().makePromise(of: Void.self)
                        let channel = try await ClientBootstrap(group: group)
                            .channelInitializer { channel in
                                channel.eventLoop.makeCompletedFuture {
                                    if let tls {
                                        try channel.pipeline.syncOperations.addHandler(
                                            try NIOSSLClientHandler(context: tls, serverHostname: nil))
                                    }
                                    try channel.pipeline.syncOperations.addHandler(EchoDriver(
                                        path: path, frame: ByteBuffer(), inFlight: 0, recorder: LatencyRecorder(),
                                        handshake: handshake))
                                }
                            }
                            .connect(host: "127.0.0.1", port: port).get()
                        try await handshake.futureResult.get()
                        return channel
                    }
                }
                for try await channel in tasks { channels.append(channel) }
            }
            opened += size
        }
        return channels
    }
}
