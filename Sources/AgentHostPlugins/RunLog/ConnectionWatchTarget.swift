import AgentHostCore
import AgentHostRunLog
import NIOCore

/// A run log watch's connection: its events reach the session as deferred events (on_event).
final class ConnectionWatchTarget: RunLogWatchTarget {
    let connection: WebSocketConnection

    init(connection: WebSocketConnection) {
        self.connection = connection
    }

    var handle: UInt64 { self.connection.handle }
    var eventLoop: any EventLoop { self.connection.eventLoop }

    func deliver(_ next: () -> DeferredEvent?) -> PacedDelivery {
        self.connection.deliverPaced(next)
    }

    var isBlocked: Bool { self.connection.isOutboundBlocked }

    func whenWritable(_ body: @escaping @Sendable () -> Void) {
        self.connection.whenWritable(body)
    }

    func deliverLast(_ event: DeferredEvent) {
        self.connection.deliverNow(event)
    }
}
