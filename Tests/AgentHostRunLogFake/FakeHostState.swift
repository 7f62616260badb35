import CAgentHostPlugin

/// What names a log, as the host names it (agenthost_plugin.h, RUN LOG): its route, its owner (the identity's
/// issuer and subject) and, for an anonymous owner (no subject), the secret (the host keeps its hash: the same
/// thing for a name), and the key. So one owner's key is EXISTS to that owner only, and another owner's same key
/// is another log.
struct LogName: Hashable, Sendable {
    let route: String
    let issuer: String
    let subject: String
    /// Empty for an identified owner (the host ignores its secret).
    let secret: [UInt8]
    let key: String

    init(route: String, issuer: String, subject: String, secret: [UInt8], key: String) {
        self.route = route
        self.issuer = issuer
        self.subject = subject
        self.secret = subject.isEmpty ? secret : []
        self.key = key
    }
}

/// A raw pointer the test hands back unchanged (the watch's `data`).
struct OpaqueData: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer?
}

extension FakeHost {
    struct Socket {
        let route: String
        let subject: String
        let issuer: String
        var onSend: @Sendable (String) -> agenthost_status_t = { _ in agenthost_status_t(AGENTHOST_OK) }
        var sink: Sink?
        var sent: [String] = []
        var closed: (code: UInt16, reason: String)?
        /// A send answered BACKPRESSURE: watches of this socket wait for `writable`.
        var blocked = false
    }

    struct Log {
        var entries: [(seq: UInt64, bytes: [UInt8])] = []
        var lastSeq: UInt64 = 0
        var droppedThrough: UInt64 = 0
        var endStatus: String?
        let subject: String
        let issuer: String
        let secret: [UInt8]
        var writer: agenthost_log_t?
        /// The writer's `signal_data` (log_create's), passed back with every LOG_SIGNAL.
        var signalData = OpaqueData(pointer: nil)

        var firstSeq: UInt64 { self.entries.first?.seq ?? self.lastSeq + 1 }

        mutating func append(_ bytes: [UInt8]) -> UInt64 {
            self.lastSeq += 1
            self.entries.append((self.lastSeq, bytes))
            return self.lastSeq
        }

        /// What the host appends when a writer goes away without ending its log (agenthost_plugin.h, RUN LOG).
        /// `crashed`: the writer's process died, and the host numbers the entry 2^20 past the last stored one.
        mutating func appendTerminal(key: String, reason: String, crashed: Bool = false) {
            let ts = "2026-01-01T00:00:00.000000+00:00"
            let r = "\"" + reason + "\""
            if crashed { self.lastSeq += (1 << 20) - 1 }
            let seq = self.lastSeq + 1
            let json = "{\"type\":\"completion\",\"status\":\"error\",\"data\":{\"task_result\":{\"messages\":[],"
                + "\"stop_reason\":\(r)},\"usage\":\"\",\"duration\":0},\"stop_reason\":\(r),\"error\":\(r),"
                + "\"timestamp\":\"\(ts)\",\"v\":1,\"run_id\":\"\(key)\",\"seq\":\(seq),\"ts\":\"\(ts)\"}"
            _ = self.append(Array(json.utf8))
            self.endStatus = "error"
        }
    }

    struct Handle {
        let name: LogName
        let isWriter: Bool
    }

    struct Watch {
        let conn: agenthost_conn_t
        let handle: agenthost_log_t
        let name: LogName
        let data: OpaqueData
        var delivered: UInt64
        var cancelled = false
    }

    struct State {
        var connections: [agenthost_conn_t: Socket] = [:]
        var logs: [LogName: Log] = [:]
        var handles: [agenthost_log_t: Handle] = [:]
        var watches: [UInt64: Watch] = [:]
        var signals: [(writer: agenthost_log_t, data: OpaqueData, bytes: [UInt8])] = []
        /// A signal the next log_create delivers before it returns (`signalWhileCreating`).
        var signalWhileCreating: [UInt8]?
        var instanceSink: Sink?
        var maxEntryBytes = 1 << 20

        /// The logs with `key` on `route` (every owner's, or `subject`'s only), by owner: what the test's
        /// inspection helpers look at.
        func names(route: String, key: String, subject: String?) -> [LogName] {
            self.logs.keys.filter { name in
                name.route == route && name.key == key && (subject == nil || name.subject == subject)
            }.sorted { ($0.issuer, $0.subject) < ($1.issuer, $1.subject) }
        }

        func name(route: String, key: String, subject: String?) -> LogName? {
            self.names(route: route, key: key, subject: subject).first
        }

        /// The next event to deliver, in the order a host would: signals, then each watch's next entry or end.
        mutating func nextEvent() -> Delivery? {
            if !self.signals.isEmpty {
                let signal = self.signals.removeFirst()
                guard let sink = self.instanceSink else { return nil }
                return Delivery(sink: sink, conn: 0, kind: AGENTHOST_EVENT_LOG_SIGNAL, id: signal.writer,
                                data: signal.data, seq: 0, bytes: signal.bytes, cancelled: false)
            }
            for id in self.watches.keys.sorted() {
                guard let watch = self.watches[id], let socket = self.connections[watch.conn] else { continue }
                if watch.cancelled || socket.closed != nil {
                    self.watches[id] = nil
                    return self.end(watch, id: id, status: "", cancelled: true, sink: socket.sink)
                }
                guard !socket.blocked else { continue }
                guard let log = self.logs[watch.name] else {
                    self.watches[id] = nil
                    return self.end(watch, id: id, status: "", cancelled: false, sink: socket.sink)
                }
                if let entry = log.entries.first(where: { $0.seq > watch.delivered }) {
                    self.watches[id]?.delivered = entry.seq
                    guard let sink = socket.sink else { continue }
                    return Delivery(sink: sink, conn: watch.conn, kind: AGENTHOST_EVENT_LOG_ENTRY, id: id,
                                    data: watch.data, seq: entry.seq, bytes: entry.bytes, cancelled: false)
                }
                if let status = log.endStatus {
                    self.watches[id] = nil
                    return self.end(watch, id: id, status: status, cancelled: false, sink: socket.sink)
                }
            }
            return nil
        }

        private func end(_ watch: Watch, id: UInt64, status: String, cancelled: Bool, sink: Sink?) -> Delivery? {
            guard let sink else { return nil }
            return Delivery(sink: sink, conn: watch.conn, kind: AGENTHOST_EVENT_LOG_END, id: id, data: watch.data,
                            seq: watch.delivered, bytes: Array(status.utf8), cancelled: cancelled)
        }
    }

    /// One event, built outside the host's lock and delivered the way the ABI says: borrowed bytes, valid during
    /// the call only.
    struct Delivery {
        let sink: Sink
        let conn: agenthost_conn_t
        let kind: Int
        let id: UInt64
        let data: OpaqueData
        let seq: UInt64
        let bytes: [UInt8]
        let cancelled: Bool

        func deliver() {
            self.bytes.withUnsafeBufferPointer { bytes in
                var event = agenthost_event_v1()
                event.struct_size = UInt32(MemoryLayout<agenthost_event_v1>.size)
                event.kind = agenthost_event_kind_t(self.kind)
                event.id = self.id
                event.data = self.data.pointer
                event.cancelled = self.cancelled ? 1 : 0
                event.log_seq = self.seq
                event.log_bytes = agenthost_bytes(ptr: bytes.baseAddress, len: bytes.count)
                withUnsafePointer(to: event) { self.sink(self.conn, $0) }
            }
        }
    }
}
