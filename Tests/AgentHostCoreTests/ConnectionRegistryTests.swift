import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import AgentHostCore

@Suite("Connection handles")
struct ConnectionRegistryTests {
    static func connection() -> WebSocketConnection {
        let loop = EmbeddedEventLoop()
        let handler = WebSocketConnectionHandler(
            endpoint: RecordingEndpoint(), info: ConnectionInfo(route: "/", requestTarget: "/", remoteAddress: ""),
            configuration: .init(), registry: ConnectionRegistry(), openConnections: OpenConnections(),
            sweeper: nil, logger: .init(label: "test"))
        return WebSocketConnection(eventLoop: loop, settings: ConnectionSettings(
            .init(), registry: ConnectionRegistry(), openConnections: OpenConnections(), logger: .init(label: "test")),
                                   handler: handler)
    }

    @Test func staleHandlesNeverResolveEvenWhenTheSlotIsReused() {
        let registry = ConnectionRegistry()
        let first = Self.connection()
        let firstHandle = registry.register(first)
        #expect(firstHandle != 0)
        #expect(registry.lookup(firstHandle) === first)
        registry.unregister(firstHandle)
        #expect(registry.lookup(firstHandle) == nil)

        let second = Self.connection()
        let secondHandle = registry.register(second)
        #expect(UInt32(truncatingIfNeeded: secondHandle) == UInt32(truncatingIfNeeded: firstHandle))  // same slot
        #expect(secondHandle != firstHandle)                                                          // new generation
        #expect(registry.lookup(firstHandle) == nil)
        #expect(registry.lookup(secondHandle) === second)
        #expect(registry.count == 1)
    }

    @Test func aRetainedSlotIsNotReusedUntilReleased() {
        let registry = ConnectionRegistry()
        let handle = registry.register(Self.connection())
        #expect(registry.retain(handle))
        registry.unregister(handle)
        #expect(!registry.retain(handle))  // closed: no new retains
        let other = registry.register(Self.connection())
        #expect(UInt32(truncatingIfNeeded: other) != UInt32(truncatingIfNeeded: handle))
        #expect(registry.release(handle))
        #expect(!registry.release(handle))  // no retain left
        let reused = registry.register(Self.connection())
        #expect(UInt32(truncatingIfNeeded: reused) == UInt32(truncatingIfNeeded: handle))
    }

    @Test func garbageHandlesAreRefused() {
        let registry = ConnectionRegistry()
        #expect(registry.lookup(0) == nil)
        #expect(registry.lookup(UInt64.max) == nil)
        #expect(!registry.retain(12345))
        #expect(!registry.release(12345))
    }
}
