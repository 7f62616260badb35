import CAgentHostPlugin
import Synchronization
@testable import AgentHostAgentSDK
@testable import AgentHostPluginSDK

/// A socket whose host is the test: the SDK's real `Connection` calls a host function table whose `send` and
/// `close` land here, so an `AgentSession` runs unchanged. `send` answers what `onSend` says (default `.ok`), on the
/// caller's thread, before it returns, as the host's would.
final class FakeConnection: Sendable {
    let handle: agenthost_conn_t
    private let state = Mutex(State())

    struct State {
        var onSend: @Sendable (String) -> HostStatus = { _ in .ok }
        var sent: [String] = []
        var closed: (code: UInt16, reason: String)?
    }

    init() {
        self.handle = Self.nextHandle.add(1, ordering: .relaxed).newValue
        Self.all.withLock { $0[self.handle] = self }
    }

    deinit { Self.all.withLock { $0[self.handle] = nil } }

    var connection: Connection { Connection(handle: self.handle, host: PluginHost(api: Self.api, context: nil)) }
    /// Frames the SDK sent, in order (each counted as the host's: it has them, whatever `send` answered).
    var sent: [String] { self.state.withLock { $0.sent } }
    var closed: (code: UInt16, reason: String)? { self.state.withLock { $0.closed } }

    func onSend(_ body: @escaping @Sendable (String) -> HostStatus) { self.state.withLock { $0.onSend = body } }

    /// A session of an agent route on this connection (its route does nothing: the tests drive runs themselves).
    func session(options: AgentRouteOptions, subject: String = "alice") -> AgentSession {
        let core = AgentCore(route: IdleRoute(), options: options, host: PluginHost(api: Self.api, context: nil),
                             runIDRoutes: [])
        return Self.withOpenInfo(route: "/agents/test", remoteAddress: "10.0.0.1:5000", subject: subject) { info in
            AgentSession(connection: self.connection, info: info, core: core)
        }
    }

    // MARK: The host function table

    private static let nextHandle = Atomic<UInt64>(1000)
    private static let all = Mutex<[agenthost_conn_t: FakeConnection]>([:])

    private static func find(_ handle: agenthost_conn_t) -> FakeConnection? { Self.all.withLock { $0[handle] } }

    private static func text(_ data: UnsafePointer<UInt8>?, _ count: Int) -> String {
        guard let data else { return "" }
        return String(decoding: UnsafeBufferPointer(start: data, count: count), as: UTF8.self)
    }

    nonisolated(unsafe) private static let api: UnsafePointer<agenthost_host_api_v1> = {
        let api = UnsafeMutablePointer<agenthost_host_api_v1>.allocate(capacity: 1)
        var table = agenthost_host_api_v1()
        table.struct_size = UInt32(MemoryLayout<agenthost_host_api_v1>.size)
        table.abi_major = 1
        table.abi_minor = 0
        table.send = { handle, _, data, count in
            guard let fake = FakeConnection.find(handle) else { return agenthost_status_t(AGENTHOST_CLOSED) }
            let frame = FakeConnection.text(data, count)
            let answer = fake.state.withLock { state -> (@Sendable (String) -> HostStatus)? in
                guard state.closed == nil else { return nil }
                state.sent.append(frame)
                return state.onSend
            }
            switch answer?(frame) ?? .closed {
            case .ok: return agenthost_status_t(AGENTHOST_OK)
            case .backpressure: return agenthost_status_t(AGENTHOST_BACKPRESSURE)
            default: return agenthost_status_t(AGENTHOST_CLOSED)
            }
        }
        table.close = { handle, code, reason, count in
            let reason = FakeConnection.text(reason, count)
            FakeConnection.find(handle)?.state.withLock { state in
                if state.closed == nil { state.closed = (code, reason) }
            }
            return agenthost_status_t(AGENTHOST_OK)
        }
        table.log = { _, _, _, _, _ in }
        api.initialize(to: table)
        return UnsafePointer(api)
    }()

    private static func withOpenInfo<Result>(route: String, remoteAddress: String, subject: String,
                                             _ body: (OpenInfo) -> Result) -> Result
    {
        let fields = [route, route, remoteAddress, "", subject, "https://idp", "", "{}"].map { Array($0.utf8) }
        return fields[0].withUnsafeBufferPointer { route in
            fields[2].withUnsafeBufferPointer { address in
                fields[4].withUnsafeBufferPointer { subject in
                    fields[5].withUnsafeBufferPointer { issuer in
                        fields[7].withUnsafeBufferPointer { claims in
                            func bytes(_ buffer: UnsafeBufferPointer<UInt8>) -> agenthost_bytes {
                                agenthost_bytes(ptr: buffer.baseAddress, len: buffer.count)
                            }
                            var raw = agenthost_open_info_v1()
                            raw.struct_size = UInt32(MemoryLayout<agenthost_open_info_v1>.size)
                            raw.route = bytes(route)
                            raw.request_target = bytes(route)
                            raw.remote_address = bytes(address)
                            raw.identity_subject = bytes(subject)
                            raw.identity_issuer = bytes(issuer)
                            raw.identity_claims_json = bytes(claims)
                            return withUnsafePointer(to: raw) { body(OpenInfo($0)) }
                        }
                    }
                }
            }
        }
    }
}

/// A route whose runs the tests drive through `RunRecord` directly.
struct IdleRoute: AgentRoute {
    static let name = "idle"
    static let version = "1.0.0"
    static let routes = ["/agents/test"]
    init() {}
    init(host: PluginHost, config: AgentRouteConfig) throws {}
    func run(_ run: AgentRun) async throws -> AgentRunResult { .completed(stopReason: nil) }
}
