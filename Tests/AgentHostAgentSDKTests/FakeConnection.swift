import AgentHostRunLogFake
import CAgentHostPlugin
import Synchronization
@testable import AgentHostAgentSDK
@testable import AgentHostPluginSDK

/// A socket whose host is the test (`FakeHost`: a real ABI 1.1 table with an in-memory run log): the SDK's real
/// `Connection`, `RunLog` and `AgentSession` run unchanged. Watch events reach the session when the test calls
/// `host.pump()`, through the SDK's own event dispatch.
final class FakeConnection: Sendable {
    let host: FakeHost
    let handle: agenthost_conn_t
    let route: String
    let subject: String

    init(host: FakeHost, route: String = "/agents/test", subject: String = "alice") {
        self.host = host
        self.route = route
        self.subject = subject
        self.handle = host.connect(route: route, subject: subject)
        host.setSink(self.handle) { _, event in PluginEvents.dispatch(instanceContext: nil, event) }
    }

    var connection: Connection { Connection(handle: self.handle, host: PluginHost(api: self.host.api, context: nil)) }
    /// Frames the SDK sent, in order.
    var sent: [String] { self.host.sent(self.handle) }
    var closed: (code: UInt16, reason: String)? { self.host.closed(self.handle) }

    /// A session of `core`'s route on this connection.
    func session(_ core: AgentCore) -> AgentSession {
        Self.withOpenInfo(route: self.route, remoteAddress: "10.0.0.1:5000", subject: self.subject) { info in
            AgentSession(connection: self.connection, info: info, core: core)
        }
    }

    /// The client goes away: the host cancels its watches, and the session gets its close.
    func disconnect(_ session: AgentSession) {
        self.host.disconnect(self.handle)
        session.didClose(code: 1006, reason: "")
    }

    /// One plugin instance (generation) of an agent route on `host`, with a clock the test moves and no sweep
    /// task (the test sweeps).
    static func core(_ host: FakeHost, options: AgentRouteOptions = AgentRouteOptions(), clock: TestClock = TestClock())
        -> AgentCore
    {
        host.setSink(0) { _, event in PluginEvents.dispatch(instanceContext: nil, event) }
        let registry = RunRegistry(options: options, now: { clock.now }, sweeps: false)
        return AgentCore(route: IdleRoute(), options: options, host: PluginHost(api: host.api, context: nil),
                         runIDRoutes: [], registry: registry)
    }

    static func withOpenInfo<Result>(route: String, remoteAddress: String, subject: String,
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

/// A clock the test moves (monotonic seconds).
final class TestClock: Sendable {
    private let seconds = Mutex(1000.0)
    var now: Double { self.seconds.withLock { $0 } }
    func advance(_ by: Double) { self.seconds.withLock { $0 += by } }
}

/// A route whose producer waits until its run ends: the tests drive runs through `RunRecord` directly.
struct IdleRoute: AgentRoute {
    static let name = "idle"
    static let version = "1.0.0"
    static let routes = ["/agents/test"]
    init() {}
    init(host: PluginHost, config: AgentRouteConfig) throws {}
    func run(_ run: AgentRun) async throws -> AgentRunResult {
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
