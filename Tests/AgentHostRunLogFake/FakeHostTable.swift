import CAgentHostPlugin
import Synchronization

/// The C function table every `FakeHost` shares: C function pointers cannot capture, so each call finds its host
/// by the handle it names.
enum FakeHostTable {
    struct Registry {
        var connections: [agenthost_conn_t: FakeHost] = [:]
        var logs: [agenthost_log_t: FakeHost] = [:]
        var watches: [UInt64: FakeHost] = [:]
    }

    static let registry = Mutex(Registry())
    private static let counter = Atomic<UInt64>(1_000_000)

    static func nextHandle() -> UInt64 { self.counter.add(1, ordering: .relaxed).newValue }

    private static func host(conn: agenthost_conn_t) -> FakeHost? { self.registry.withLock { $0.connections[conn] } }
    private static func host(log: agenthost_log_t) -> FakeHost? { self.registry.withLock { $0.logs[log] } }

    private static func bytes(_ data: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
        guard let data else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: count))
    }

    private static func status(_ value: Int) -> agenthost_status_t { agenthost_status_t(value) }

    /// What log_create and log_open share: find the socket's host, name the log on its route, and register the
    /// new handle if `body` (under the host's lock) says OK.
    private static func newHandle(_ conn: agenthost_conn_t, _ key: UnsafePointer<UInt8>?, _ keyLength: Int,
                                  _ secret: UnsafePointer<UInt8>?, _ secretLength: Int,
                                  _ out: UnsafeMutablePointer<agenthost_log_t>?,
                                  _ body: (inout FakeHost.State, FakeHost.Socket, LogName, [UInt8], agenthost_log_t) -> Int)
        -> agenthost_status_t
    {
        guard let host = self.host(conn: conn), let out, (1...128).contains(keyLength) else {
            return self.status(AGENTHOST_BAD_ARGUMENT)
        }
        let keyText = String(decoding: self.bytes(key, keyLength), as: UTF8.self)
        let secretBytes = self.bytes(secret, secretLength)
        let handle = self.nextHandle()
        let result = host.state.withLock { state -> Int in
            guard let socket = state.connections[conn], socket.closed == nil else { return AGENTHOST_CLOSED }
            let name = LogName(route: socket.route, issuer: socket.issuer, subject: socket.subject, secret: secretBytes,
                               key: keyText)
            return body(&state, socket, name, secretBytes, handle)
        }
        guard result == AGENTHOST_OK else { return self.status(result) }
        self.registry.withLock { $0.logs[handle] = host }
        out.pointee = handle
        return self.status(AGENTHOST_OK)
    }

    static func make(abiMinor: UInt32) -> agenthost_host_api_v1 {
        var table = agenthost_host_api_v1()
        // A 1.0 or 1.1 host's table ends where that version's did; the fake has no 1.2 functions yet.
        table.struct_size = abiMinor >= 1
            ? UInt32(MemoryLayout<agenthost_host_api_v1>.offset(of: \.log_release)! + MemoryLayout<UnsafeRawPointer>.size)
            : UInt32(MemoryLayout<agenthost_host_api_v1>.offset(of: \.release_conn)! + MemoryLayout<UnsafeRawPointer>.size)
        table.abi_major = 1
        table.abi_minor = abiMinor
        table.send = { conn, _, data, count in
            guard let host = FakeHostTable.host(conn: conn) else { return FakeHostTable.status(AGENTHOST_CLOSED) }
            let frame = String(decoding: FakeHostTable.bytes(data, count), as: UTF8.self)
            let answer = host.state.withLock { state -> (@Sendable (String) -> agenthost_status_t)? in
                guard let socket = state.connections[conn], socket.closed == nil else { return nil }
                state.connections[conn]?.sent.append(frame)
                return socket.onSend
            }
            guard let answer else { return FakeHostTable.status(AGENTHOST_CLOSED) }
            let status = answer(frame)
            if status == agenthost_status_t(AGENTHOST_BACKPRESSURE) {
                host.state.withLock { $0.connections[conn]?.blocked = true }
            }
            return status
        }
        table.close = { conn, code, reason, count in
            let text = String(decoding: FakeHostTable.bytes(reason, count), as: UTF8.self)
            FakeHostTable.host(conn: conn)?.state.withLock { state in
                if state.connections[conn]?.closed == nil { state.connections[conn]?.closed = (code, text) }
            }
            return FakeHostTable.status(AGENTHOST_OK)
        }
        table.log = { _, _, _, _, _ in }
        guard abiMinor >= 1 else { return table }
        table.log_create = { conn, key, keyLength, secret, secretLength, signalData, out in
            var early: FakeHost.Delivery?
            let status = FakeHostTable.newHandle(conn, key, keyLength, secret, secretLength, out) {
                state, socket, name, secret, handle in
                if socket.subject.isEmpty, !(16...256).contains(secret.count) { return AGENTHOST_BAD_ARGUMENT }
                guard state.logs[name] == nil else { return AGENTHOST_EXISTS }
                state.logs[name] = FakeHost.Log(subject: socket.subject, issuer: socket.issuer,
                                                secret: socket.subject.isEmpty ? secret : [], writer: handle,
                                                signalData: OpaqueData(pointer: signalData))
                state.handles[handle] = FakeHost.Handle(name: name, isWriter: true)
                if let bytes = state.signalWhileCreating, let sink = state.instanceSink {
                    state.signalWhileCreating = nil
                    early = FakeHost.Delivery(sink: sink, conn: 0, kind: AGENTHOST_EVENT_LOG_SIGNAL, id: handle,
                                              data: OpaqueData(pointer: signalData), seq: 0, bytes: bytes,
                                              cancelled: false)
                }
                return AGENTHOST_OK
            }
            // As a host thread may: the signal arrives before log_create has returned the handle.
            early?.deliver()
            return status
        }
        table.log_open = { conn, key, keyLength, secret, secretLength, out in
            FakeHostTable.newHandle(conn, key, keyLength, secret, secretLength, out) { state, socket, name, secret, handle in
                guard secret.count <= 256 else { return AGENTHOST_BAD_ARGUMENT }
                // The name holds the owner (and an anonymous owner's secret): another identity, another route or
                // another secret names another log. An anonymous caller without a secret names none.
                guard !socket.subject.isEmpty || !secret.isEmpty, state.logs[name] != nil else {
                    return AGENTHOST_NOT_FOUND
                }
                state.handles[handle] = FakeHost.Handle(name: name, isWriter: false)
                return AGENTHOST_OK
            }
        }
        table.log_append = { handle, data, count, seq in
            guard let host = FakeHostTable.host(log: handle) else { return FakeHostTable.status(AGENTHOST_BAD_ARGUMENT) }
            let bytes = FakeHostTable.bytes(data, count)
            let result = host.state.withLock { state -> (Int, UInt64) in
                guard let owned = state.handles[handle], owned.isWriter, bytes.count <= state.maxEntryBytes else {
                    return (AGENTHOST_BAD_ARGUMENT, 0)
                }
                guard state.logs[owned.name]?.endStatus == nil else { return (AGENTHOST_CLOSED, 0) }
                return (AGENTHOST_OK, state.logs[owned.name]!.append(bytes))
            }
            if result.0 == AGENTHOST_OK { seq?.pointee = result.1 }
            return FakeHostTable.status(result.0)
        }
        table.log_end = { handle, status, count in
            guard let host = FakeHostTable.host(log: handle), (1...31).contains(count) else {
                return FakeHostTable.status(AGENTHOST_BAD_ARGUMENT)
            }
            let text = String(decoding: FakeHostTable.bytes(status, count), as: UTF8.self)
            return FakeHostTable.status(host.state.withLock { state -> Int in
                guard let owned = state.handles[handle], owned.isWriter else { return AGENTHOST_BAD_ARGUMENT }
                guard state.logs[owned.name]?.endStatus == nil else { return AGENTHOST_CLOSED }
                state.logs[owned.name]?.endStatus = text
                return AGENTHOST_OK
            })
        }
        table.log_info = { handle, info in
            guard let host = FakeHostTable.host(log: handle), let info else {
                return FakeHostTable.status(AGENTHOST_BAD_ARGUMENT)
            }
            guard let log = host.state.withLock({ state in state.handles[handle].flatMap { state.logs[$0.name] } }) else {
                return FakeHostTable.status(AGENTHOST_BAD_ARGUMENT)
            }
            info.pointee.ended = log.endStatus == nil ? 0 : 1
            info.pointee.first_seq = log.firstSeq
            info.pointee.last_seq = log.lastSeq
            let status = Array((log.endStatus ?? "live").utf8.prefix(31)) + [0]
            withUnsafeMutableBytes(of: &info.pointee.status) { raw in
                for (index, byte) in status.enumerated() { raw[index] = byte }
            }
            return FakeHostTable.status(AGENTHOST_OK)
        }
        table.log_watch = { conn, handle, after, data, watchID in
            guard let host = FakeHostTable.host(log: handle), let watchID else {
                return FakeHostTable.status(AGENTHOST_BAD_ARGUMENT)
            }
            let id = FakeHostTable.nextHandle()
            let result = host.state.withLock { state -> Int in
                guard let owned = state.handles[handle] else { return AGENTHOST_BAD_ARGUMENT }
                guard let socket = state.connections[conn], socket.closed == nil else { return AGENTHOST_CLOSED }
                state.watches[id] = FakeHost.Watch(conn: conn, handle: handle, name: owned.name, data: OpaqueData(pointer: data),
                                                   delivered: after)
                return AGENTHOST_OK
            }
            guard result == AGENTHOST_OK else { return FakeHostTable.status(result) }
            FakeHostTable.registry.withLock { $0.watches[id] = host }
            watchID.pointee = id
            return FakeHostTable.status(AGENTHOST_OK)
        }
        table.log_unwatch = { _, id in
            guard let host = FakeHostTable.registry.withLock({ $0.watches[id] }) else {
                return FakeHostTable.status(AGENTHOST_CLOSED)
            }
            return FakeHostTable.status(host.state.withLock { state -> Int in
                guard state.watches[id] != nil, state.watches[id]?.cancelled == false else { return AGENTHOST_CLOSED }
                state.watches[id]?.cancelled = true
                return AGENTHOST_OK
            })
        }
        table.log_signal = { handle, data, count in
            guard let host = FakeHostTable.host(log: handle), count <= 65_536 else {
                return FakeHostTable.status(AGENTHOST_BAD_ARGUMENT)
            }
            let bytes = FakeHostTable.bytes(data, count)
            return FakeHostTable.status(host.state.withLock { state -> Int in
                guard let owned = state.handles[handle] else { return AGENTHOST_BAD_ARGUMENT }
                guard let log = state.logs[owned.name], log.endStatus == nil, let writer = log.writer else {
                    return AGENTHOST_NOT_FOUND
                }
                state.signals.append((writer, log.signalData, bytes))
                return AGENTHOST_OK
            })
        }
        table.log_release = { handle in
            guard let host = FakeHostTable.host(log: handle) else { return FakeHostTable.status(AGENTHOST_BAD_ARGUMENT) }
            FakeHostTable.registry.withLock { _ = $0.logs.removeValue(forKey: handle) }
            host.state.withLock { state in
                guard let owned = state.handles.removeValue(forKey: handle) else { return }
                for (id, watch) in state.watches where watch.handle == handle { state.watches[id]?.cancelled = true }
                if owned.isWriter, var log = state.logs[owned.name] {
                    if log.endStatus == nil { log.appendTerminal(key: owned.name.key, reason: "the run's writer went away") }
                    log.writer = nil
                    state.logs[owned.name] = log
                }
            }
            return FakeHostTable.status(AGENTHOST_OK)
        }
        return table
    }
}
