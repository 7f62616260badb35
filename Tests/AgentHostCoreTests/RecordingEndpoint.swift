import NIOCore
import Synchronization

@testable import AgentHostCore

/// An endpoint whose sessions record every call and can be told how to answer messages.
final class RecordingEndpoint: WebSocketEndpoint, Sendable {
    let name = "recording"
    let events = Mutex<[String]>([])
    let refuse: Bool
    /// What each session does with a message: "echo" sends it back, "twice" sends it twice.
    let behaviour: String

    init(refuse: Bool = false, behaviour: String = "echo") {
        self.refuse = refuse
        self.behaviour = behaviour
    }

    struct Refused: Error {}

    func openSession(connection: WebSocketConnection, info: ConnectionInfo) throws -> any WebSocketSession {
        self.record("open \(info.route)")
        if self.refuse { throw Refused() }
        return Session(endpoint: self, connection: connection)
    }

    func record(_ event: String) { self.events.withLock { $0.append(event) } }
    var recorded: [String] { self.events.withLock { $0 } }

    final class Session: WebSocketSession {
        let endpoint: RecordingEndpoint
        let connection: WebSocketConnection
        var lastSendStatus: ConnectionCallStatus?

        init(endpoint: RecordingEndpoint, connection: WebSocketConnection) {
            self.endpoint = endpoint
            self.connection = connection
        }

        func didReceive(kind: WebSocketMessageKind, data: ByteBuffer) {
            self.endpoint.record("message \(kind) \(String(buffer: data))")
            if String(buffer: data) == "pause-reading" { _ = self.connection.pauseReading() }
            let times = self.endpoint.behaviour == "twice" ? 2 : 1
            for _ in 0..<times {
                self.lastSendStatus = data.withUnsafeReadableBytes { self.connection.send(kind: kind, bytes: $0) }
            }
        }

        func didReceive(event: DeferredEvent) {
            self.endpoint.record("event \(event.kind) \(event.id) cancelled=\(event.cancelled)")
            if !event.cancelled {
                _ = "from event".utf8.withContiguousStorageIfAvailable {
                    self.connection.send(kind: .text, bytes: UnsafeRawBufferPointer($0))
                }
            }
        }

        func didBecomeWritable() { self.endpoint.record("writable") }
        func didFail(_ failure: WebSocketFailure) { self.endpoint.record("fail \(failure)") }
        func didClose(code: UInt16, reason: String) { self.endpoint.record("close \(code) \(reason)") }
    }
}
