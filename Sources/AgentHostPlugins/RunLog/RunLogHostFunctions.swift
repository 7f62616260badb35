import AgentHostCore
import AgentHostRunLog
import CAgentHostPlugin
import Logging
import Synchronization

/// The ABI 1.1 run log entries of the host function table: C functions that find the caller's connection and
/// instance and forward to the process's `RunLogService`.
enum RunLogHostFunctions {
    /// Plugin connections by handle (instance, route, identity): registered by `PluginEndpoint`.
    static let connections = PluginConnections()

    /// Plugin instances by id, for signals (delivered to the writer's instance).
    static let instances = Mutex<[UInt64: PluginEndpoint]>([:])

    private static let installed = Mutex<RunLogService?>(nil)

    /// The service the table forwards to: the one the server installed, or an in-memory one (tests, tools).
    static var service: RunLogService {
        installed.withLock { service in
            if let service { return service }
            let fallback = RunLogService(backend: MemoryRunLogBackend(), logger: Logger(label: "agenthost.runlog"))
            fallback.startInMemory()
            service = fallback
            return fallback
        }
    }

    static func install(_ service: RunLogService) {
        installed.withLock { $0 = service }
    }

    static func status(_ failure: RunLogFailure?) -> agenthost_status_t {
        guard let failure else { return agenthost_status_t(AGENTHOST_OK) }
        switch failure {
        case .notFound: return agenthost_status_t(AGENTHOST_NOT_FOUND)
        case .exists: return agenthost_status_t(AGENTHOST_EXISTS)
        case .closed: return agenthost_status_t(AGENTHOST_CLOSED)
        case .badArgument: return agenthost_status_t(AGENTHOST_BAD_ARGUMENT)
        case .unavailable: return agenthost_status_t(AGENTHOST_UNAVAILABLE)
        }
    }

    static func status<T>(_ result: Result<T, RunLogFailure>, _ write: (T) -> Void) -> agenthost_status_t {
        switch result {
        case .success(let value):
            write(value)
            return agenthost_status_t(AGENTHOST_OK)
        case .failure(let failure):
            return Self.status(failure)
        }
    }

    static let badArgument = agenthost_status_t(AGENTHOST_BAD_ARGUMENT)
    static let closed = agenthost_status_t(AGENTHOST_CLOSED)
}

/// A byte argument: NULL is allowed only with length 0. A length past Int.max (a negative size_t cast, say)
/// arrives negative: refused, never handed to a buffer pointer (which would stop the process).
private func bytes(_ pointer: UnsafePointer<UInt8>?, _ length: Int) -> UnsafeRawBufferPointer? {
    guard length >= 0, pointer != nil || length == 0 else { return nil }
    return UnsafeRawBufferPointer(start: pointer, count: length)
}

func hostLogCreate(_ conn: agenthost_conn_t, _ key: UnsafePointer<UInt8>?, _ keyLength: Int,
                   _ secret: UnsafePointer<UInt8>?, _ secretLength: Int, _ signalData: UnsafeMutableRawPointer?,
                   _ log: UnsafeMutablePointer<agenthost_log_t>?) -> agenthost_status_t {
    guard let log, let key = bytes(key, keyLength), let secret = bytes(secret, secretLength) else {
        return RunLogHostFunctions.badArgument
    }
    guard let caller = RunLogHostFunctions.connections.lookup(conn),
        let endpoint = RunLogHostFunctions.instances.withLock({ $0[caller.instance] })
    else { return RunLogHostFunctions.closed }
    let result = RunLogHostFunctions.service.create(
        instance: caller.instance, route: caller.route, key: key, owner: caller.owner, secret: secret,
        signalContext: UInt(bitPattern: signalData)) { [weak endpoint] event in endpoint?.deliverSignal(event) }
    return RunLogHostFunctions.status(result) { log.pointee = $0 }
}

func hostLogOpen(_ conn: agenthost_conn_t, _ key: UnsafePointer<UInt8>?, _ keyLength: Int,
                 _ secret: UnsafePointer<UInt8>?, _ secretLength: Int,
                 _ log: UnsafeMutablePointer<agenthost_log_t>?) -> agenthost_status_t {
    guard let log, let key = bytes(key, keyLength), let secret = bytes(secret, secretLength) else {
        return RunLogHostFunctions.badArgument
    }
    guard let caller = RunLogHostFunctions.connections.lookup(conn) else { return RunLogHostFunctions.closed }
    let result = RunLogHostFunctions.service.open(instance: caller.instance, route: caller.route, key: key,
                                                  owner: caller.owner, secret: secret)
    return RunLogHostFunctions.status(result) { log.pointee = $0 }
}

func hostLogAppend(_ log: agenthost_log_t, _ data: UnsafePointer<UInt8>?, _ length: Int,
                   _ seq: UnsafeMutablePointer<UInt64>?) -> agenthost_status_t {
    guard let data = bytes(data, length) else { return RunLogHostFunctions.badArgument }
    return RunLogHostFunctions.status(RunLogHostFunctions.service.append(handle: log, bytes: data)) { seq?.pointee = $0 }
}

func hostLogEnd(_ log: agenthost_log_t, _ status: UnsafePointer<UInt8>?, _ length: Int) -> agenthost_status_t {
    guard let status = bytes(status, length), UTF8Validator.isValid(status) else { return RunLogHostFunctions.badArgument }
    return RunLogHostFunctions.status(RunLogHostFunctions.service.end(handle: log, status: String(decoding: status, as: UTF8.self)))
}

func hostLogInfo(_ log: agenthost_log_t, _ info: UnsafeMutablePointer<agenthost_log_info_v1>?) -> agenthost_status_t {
    guard let info else { return RunLogHostFunctions.badArgument }
    let size = Int(info.pointee.struct_size)
    guard size >= MemoryLayout<agenthost_log_info_v1>.offset(of: \.ended)! + 4 else { return RunLogHostFunctions.badArgument }
    return RunLogHostFunctions.status(RunLogHostFunctions.service.info(handle: log)) { value in
        // Fill only the fields the caller's struct_size covers (an older, shorter struct stays intact).
        var full = agenthost_log_info_v1()
        full.struct_size = info.pointee.struct_size
        full.ended = value.ended ? 1 : 0
        full.first_seq = value.firstSeq
        full.last_seq = value.lastSeq
        full.created_unix_ms = value.createdMilliseconds
        full.ended_unix_ms = value.endedMilliseconds
        withUnsafeMutableBytes(of: &full.status) { status in
            let text = Array(value.status.utf8.prefix(status.count - 1))
            status.copyBytes(from: text)
            status[text.count] = 0
        }
        withUnsafeBytes(of: &full) { source in
            UnsafeMutableRawPointer(info).copyMemory(from: source.baseAddress!,
                                                     byteCount: min(size, MemoryLayout<agenthost_log_info_v1>.size))
        }
    }
}

func hostLogWatch(_ conn: agenthost_conn_t, _ log: agenthost_log_t, _ afterSeq: UInt64, _ data: UnsafeMutableRawPointer?,
                  _ watchID: UnsafeMutablePointer<UInt64>?) -> agenthost_status_t {
    guard let watchID else { return RunLogHostFunctions.badArgument }
    guard let caller = RunLogHostFunctions.connections.lookup(conn),
        let connection = HostFunctionTable.registry.lookup(conn), !connection.isClosing
    else { return RunLogHostFunctions.closed }
    let service = RunLogHostFunctions.service
    let result = service.watch(instance: caller.instance, handle: log, target: ConnectionWatchTarget(connection: connection),
                               afterSeq: afterSeq, context: UInt(bitPattern: data))
    // The session may have closed since the lookup (a plugin thread racing on_close): its watches were cancelled
    // before this one existed, so cancel again. The entry goes before the session's own cancel runs, so one of the
    // two always sees the new watch.
    if case .success = result, RunLogHostFunctions.connections.lookup(conn) == nil { service.connectionClosed(conn) }
    return RunLogHostFunctions.status(result) { watchID.pointee = $0 }
}

func hostLogUnwatch(_ conn: agenthost_conn_t, _ watchID: UInt64) -> agenthost_status_t {
    RunLogHostFunctions.status(RunLogHostFunctions.service.unwatch(connection: conn, watchID: watchID))
}

func hostLogSignal(_ log: agenthost_log_t, _ data: UnsafePointer<UInt8>?, _ length: Int) -> agenthost_status_t {
    guard let data = bytes(data, length) else { return RunLogHostFunctions.badArgument }
    return RunLogHostFunctions.status(RunLogHostFunctions.service.signal(handle: log, bytes: data))
}

func hostLogRelease(_ log: agenthost_log_t) -> agenthost_status_t {
    RunLogHostFunctions.status(RunLogHostFunctions.service.release(handle: log))
}
