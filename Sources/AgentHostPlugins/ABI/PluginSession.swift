import AgentHostCore
import CAgentHostPlugin
import NIOCore

/// One connection's session in a plugin: forwards the core's session calls to the plugin's C callbacks.
/// Every call arrives on the connection's event loop, one at a time, timed by the core (the core guarantees it).
final class PluginSession: WebSocketSession {
    private let endpoint: PluginEndpoint
    private let handle: agenthost_conn_t
    private var connData: UnsafeMutableRawPointer?
    private var closed = false

    init(endpoint: PluginEndpoint, handle: agenthost_conn_t, connData: UnsafeMutableRawPointer?) {
        self.endpoint = endpoint
        self.handle = handle
        self.connData = connData
    }

    func didReceive(kind: WebSocketMessageKind, data: ByteBuffer) {
        let cKind = agenthost_message_kind_t(kind == .text ? AGENTHOST_MESSAGE_TEXT : AGENTHOST_MESSAGE_BINARY)
        data.withUnsafeReadableBytes { bytes in
            self.endpoint.onMessage(self.endpoint.instance, self.connData, self.handle, cKind,
                                    bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
    }

    func didReceive(event: DeferredEvent) {
        if event.logBytes.isEmpty {
            self.deliver(event, bytes: agenthost_bytes(ptr: nil, len: 0))
        } else {
            event.logBytes.withUnsafeBufferPointer { bytes in
                self.deliver(event, bytes: agenthost_bytes(ptr: bytes.baseAddress, len: bytes.count))
            }
        }
    }

    private func deliver(_ event: DeferredEvent, bytes: agenthost_bytes) {
        var cEvent = agenthost_event_v1(
            struct_size: UInt32(MemoryLayout<agenthost_event_v1>.size), kind: Self.cKind(event.kind),
            id: event.id, data: UnsafeMutableRawPointer(bitPattern: event.context),
            cancelled: event.cancelled ? 1 : 0, log_seq: event.logSeq, log_bytes: bytes)
        if self.closed {
            self.endpoint.ifNotDropped {
                self.endpoint.onEvent(self.endpoint.instance, nil, self.handle, &cEvent)
            }
        } else {
            self.endpoint.onEvent(self.endpoint.instance, self.connData, self.handle, &cEvent)
        }
    }

    func didBecomeWritable() {
        guard let onWritable = self.endpoint.onWritable, !self.closed else { return }
        onWritable(self.endpoint.instance, self.connData, self.handle)
    }

    func didFail(_ failure: WebSocketFailure) {
        guard let onError = self.endpoint.onError, !self.closed else { return }
        let (kind, message) = Self.cError(failure)
        var text = message
        text.withUTF8 { bytes in
            onError(self.endpoint.instance, self.connData, self.handle, kind, bytes.baseAddress, bytes.count)
        }
    }

    func didClose(code: UInt16, reason: String) {
        guard !self.closed else { return }
        self.closed = true
        var reason = reason
        reason.withUTF8 { bytes in
            self.endpoint.onClose(self.endpoint.instance, self.connData, self.handle, code, bytes.baseAddress,
                                  bytes.count)
        }
        self.connData = nil
        self.endpoint.sessionClosed(handle: self.handle)
    }

    private static func cKind(_ kind: DeferredEvent.Kind) -> agenthost_event_kind_t {
        switch kind {
        case .posted: return agenthost_event_kind_t(AGENTHOST_EVENT_POSTED)
        case .timer: return agenthost_event_kind_t(AGENTHOST_EVENT_TIMER)
        case .logEntry: return agenthost_event_kind_t(AGENTHOST_EVENT_LOG_ENTRY)
        case .logEnd: return agenthost_event_kind_t(AGENTHOST_EVENT_LOG_END)
        case .logSignal: return agenthost_event_kind_t(AGENTHOST_EVENT_LOG_SIGNAL)
        }
    }

    private static func cError(_ failure: WebSocketFailure) -> (agenthost_error_kind_t, String) {
        switch failure {
        case .protocolError(let m): return (agenthost_error_kind_t(AGENTHOST_ERROR_PROTOCOL), m)
        case .invalidData(let m): return (agenthost_error_kind_t(AGENTHOST_ERROR_INVALID_DATA), m)
        case .tooLarge(let m): return (agenthost_error_kind_t(AGENTHOST_ERROR_TOO_LARGE), m)
        case .timeout(let m): return (agenthost_error_kind_t(AGENTHOST_ERROR_TIMEOUT), m)
        case .transport(let m): return (agenthost_error_kind_t(AGENTHOST_ERROR_IO), m)
        case .policy(let m): return (agenthost_error_kind_t(AGENTHOST_ERROR_POLICY), m)
        }
    }
}
