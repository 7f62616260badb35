import AgentHostRunLogFake
import CAgentHostPlugin
import Synchronization
import Testing
@testable import AgentHostPluginSDK

/// The run log wrapper over the C table: events reach the right Swift object by kind, and every box the SDK
/// hands the host is released exactly once (watch boxes at their one LOG_END, signal handlers at release).
@Suite("run log wrapper")
struct RunLogTests {
    /// Records a watch's events; `Weak` tells whether the SDK still holds it.
    final class Recorder: RunLogWatcher, @unchecked Sendable {
        var entries: [(UInt64, String)] = []
        var ends: [(lastSeq: UInt64, status: String, cancelled: Bool)] = []
        func runLog(entry seq: UInt64, bytes: UnsafeBufferPointer<UInt8>) {
            self.entries.append((seq, String(decoding: bytes, as: UTF8.self)))
        }
        func runLogEnded(lastSeq: UInt64, status: String, cancelled: Bool) {
            self.ends.append((lastSeq, status, cancelled))
        }
    }

    struct Setup {
        let host = FakeHost()
        let conn: agenthost_conn_t
        /// The plugin instance's context, as bits (0: nil). A test that counts signal handlers takes one of its own:
        /// the handler table is process-wide and the suite's tests run in parallel.
        let contextBits: UInt
        var context: OpaquePointer? { OpaquePointer(bitPattern: self.contextBits) }
        var connection: Connection {
            Connection(handle: self.conn, host: PluginHost(api: self.host.api, context: self.context))
        }

        init(subject: String = "alice", contextBits: UInt = 0) {
            self.contextBits = contextBits
            self.conn = self.host.connect(route: "/agents/test", subject: subject)
            self.host.setSink(self.conn) { _, event in
                PluginEvents.dispatch(instanceContext: OpaquePointer(bitPattern: contextBits), event)
            }
            self.host.setSink(0) { _, event in
                PluginEvents.dispatch(instanceContext: OpaquePointer(bitPattern: contextBits), event)
            }
        }
    }

    @Test func aWatchDeliversEntriesInOrderThenOneEndAndReleasesItsWatcher() throws {
        let setup = Setup()
        let log = try RunLog.create(on: setup.connection, key: "run-1")
        #expect(try log.append(text: "one") == 1)
        #expect(try log.append(text: "two") == 2)
        weak var weakRecorder: Recorder?
        do {
            let recorder = Recorder()
            weakRecorder = recorder
            try log.watch(on: setup.connection, after: 0, recorder)
        }
        setup.host.pump()
        #expect(weakRecorder?.entries.map(\.1) == ["one", "two"])
        try log.append(text: "three")
        try log.end(status: "complete")
        // Keep it alive only through the SDK's box: the end must come, then the box must be gone.
        let recorder = try #require(weakRecorder)
        setup.host.pump()
        #expect(recorder.entries.map(\.0) == [1, 2, 3])
        #expect(recorder.ends.count == 1)
        #expect(recorder.ends.first?.status == "complete")
        #expect(recorder.ends.first?.lastSeq == 3)
        #expect(recorder.ends.first?.cancelled == false)
        let info = try log.info()
        #expect(info == RunLogInfo(ended: true, firstSeq: 1, lastSeq: 3, status: "complete"))
        log.release()
        #expect(setup.host.openHandles == 0)
    }

    @Test func theWatchBoxIsFreedAfterItsEndAndNotBefore() throws {
        let setup = Setup()
        let log = try RunLog.create(on: setup.connection, key: "run-2")
        weak var weakRecorder: Recorder?
        do {
            let recorder = Recorder()
            weakRecorder = recorder
            try log.watch(on: setup.connection, after: 0, recorder)
        }
        setup.host.pump()
        #expect(weakRecorder != nil, "a live watch keeps its watcher")
        setup.host.disconnect(setup.conn)
        setup.host.pump()
        #expect(weakRecorder == nil, "the cancelled LOG_END released the box")
        log.release()
    }

    @Test func aWatchThatDidNotStartReleasesItsWatcherAtOnce() throws {
        let setup = Setup()
        let log = try RunLog.create(on: setup.connection, key: "run-3")
        setup.host.disconnect(setup.conn)
        weak var weakRecorder: Recorder?
        do {
            let recorder = Recorder()
            weakRecorder = recorder
            #expect(throws: RunLogError.self) { try log.watch(on: setup.connection, after: 0, recorder) }
        }
        #expect(weakRecorder == nil)
        log.release()
    }

    @Test func unwatchEndsTheWatchCancelled() throws {
        let setup = Setup()
        let log = try RunLog.create(on: setup.connection, key: "run-4")
        let recorder = Recorder()
        let watch = try log.watch(on: setup.connection, after: 0, recorder)
        #expect(watch.cancel())
        setup.host.pump()
        #expect(recorder.ends.count == 1)
        #expect(recorder.ends.first?.cancelled == true)
        #expect(!watch.cancel(), "a watch ends once")
        log.release()
    }

    @Test func signalsReachTheWriterByKindAndStopAtRelease() throws {
        let setup = Setup(contextBits: 0x5160_A000)
        let received = Mutex<[String]>([])
        let writer = try RunLog.create(on: setup.connection, key: "run-5") { bytes in
            received.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
        }
        let reader = try RunLog.open(on: setup.connection, key: "run-5")
        let before = RunLogSignals.count(context: setup.context)
        try reader.signal(text: "{\"type\":\"stop\"}")
        try reader.signal(text: "second")
        setup.host.pump()
        #expect(received.withLock { $0 } == ["{\"type\":\"stop\"}", "second"])
        // A signal still queued when the writer releases its handle finds no handler, and nothing is freed twice.
        try reader.signal(text: "late")
        writer.release()
        #expect(RunLogSignals.count(context: setup.context) == before - 1)
        setup.host.pump()
        #expect(received.withLock { $0.count } == 2)
        #expect(throws: RunLogError(.notFound, "signal")) { try reader.signal(text: "after") }
        reader.release()
        reader.release()  // a second release does nothing
        #expect(setup.host.openHandles == 0)
    }

    @Test func aSignalDeliveredBeforeCreateReturnsReachesTheWriter() throws {
        let setup = Setup()
        let received = Mutex<[String]>([])
        setup.host.signalWhileCreating("{\"type\":\"stop\"}")
        let writer = try RunLog.create(on: setup.connection, key: "run-early") { bytes in
            received.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
        }
        #expect(received.withLock { $0 } == ["{\"type\":\"stop\"}"], "registered before log_create was called")
        writer.release()
        #expect(setup.host.openHandles == 0)
    }

    @Test func aFailedCreateAndAnInstanceDropLeaveNoHandler() throws {
        // An instance of its own (its own context), so the drop below touches no other test's handlers.
        let bits: UInt = 0xA11CE000
        let context = OpaquePointer(bitPattern: bits)
        let host = FakeHost()
        let conn = host.connect(route: "/agents/test", subject: "alice")
        host.setSink(0) { _, event in PluginEvents.dispatch(instanceContext: OpaquePointer(bitPattern: bits), event) }
        let connection = Connection(handle: conn, host: PluginHost(api: host.api, context: context))
        let received = Mutex(0)
        let writer = try RunLog.create(on: connection, key: "run-drop") { _ in received.withLock { $0 += 1 } }
        #expect(RunLogSignals.count(context: context) == 1)
        #expect(throws: RunLogError(.exists, "create")) {
            try RunLog.create(on: connection, key: "run-drop") { _ in received.withLock { $0 += 100 } }
        }
        #expect(RunLogSignals.count(context: context) == 1, "the refused create's handler is gone")
        let reader = try RunLog.open(on: connection, key: "run-drop")
        try reader.signal(text: "one")
        host.pump()
        #expect(received.withLock { $0 } == 1)
        // The instance is dropped with its writer never released: its handler goes with it.
        try reader.signal(text: "late")
        RunLogSignals.unregisterAll(context: context)
        #expect(RunLogSignals.count(context: context) == 0)
        host.pump()
        #expect(received.withLock { $0 } == 1, "a signal after the drop finds nothing")
        reader.release()
        writer.release()
    }

    @Test func logsAreNamedByRouteOwnerAndKeyAsTheHostNamesThem() throws {
        let host = FakeHost()
        func connection(_ subject: String, issuer: String = "https://idp", route: String = "/agents/test")
            -> Connection
        {
            Connection(handle: host.connect(route: route, subject: subject, issuer: issuer),
                       host: PluginHost(api: host.api, context: nil))
        }
        let alice = connection("alice")
        let aliceAgain = connection("alice")
        let secretA = String(repeating: "a", count: 16)
        let secretB = String(repeating: "b", count: 16)
        var logs = [try RunLog.create(on: alice, key: "42")]
        // The same owner's key on the same route: EXISTS, from any of its sockets.
        #expect(throws: RunLogError(.exists, "create")) { try RunLog.create(on: aliceAgain, key: "42") }
        // Another owner's same key is another log: no EXISTS, and neither reads the other's.
        logs.append(try RunLog.create(on: connection("bob"), key: "42"))
        logs.append(try RunLog.create(on: connection("alice", issuer: "https://other-idp"), key: "42"))
        logs.append(try RunLog.create(on: connection("alice", route: "/agents/other"), key: "42"))
        try logs[0].append(text: "alice's")
        try logs[1].append(text: "bob's")
        #expect(host.entries(route: "/agents/test", key: "42", subject: "alice") == ["alice's"])
        #expect(host.entries(route: "/agents/test", key: "42", subject: "bob") == ["bob's"])
        #expect(host.logCount(route: "/agents/test", key: "42") == 3)
        let opened = try RunLog.open(on: aliceAgain, key: "42")
        #expect(try opened.info().lastSeq == 1)
        opened.release()
        #expect(throws: RunLogError(.notFound, "open")) { try RunLog.open(on: connection("carol"), key: "42") }
        // An empty subject is anonymous: it needs a secret, and each secret names its own log.
        let anonymous = connection("")
        #expect(throws: RunLogError(.badArgument, "create")) { try RunLog.create(on: anonymous, key: "7") }
        logs.append(try RunLog.create(on: anonymous, key: "7", secret: secretA))
        #expect(throws: RunLogError(.exists, "create")) {
            try RunLog.create(on: connection(""), key: "7", secret: secretA)
        }
        logs.append(try RunLog.create(on: connection(""), key: "7", secret: secretB))
        #expect(throws: RunLogError(.notFound, "open")) { try RunLog.open(on: anonymous, key: "7") }
        let byToken = try RunLog.open(on: connection(""), key: "7", secret: secretA)
        byToken.release()
        for log in logs { log.release() }
        #expect(host.openHandles == 0)
    }

    @Test func postsAndTimersStillRunTheirClosureOnce() {
        let ran = Mutex(0)
        for kind in [AGENTHOST_EVENT_POSTED, AGENTHOST_EVENT_TIMER] {
            for cancelled: Int32 in [0, 1] {
                let work = Unmanaged.passRetained(DeferredWork { ran.withLock { $0 += 1 } })
                var event = agenthost_event_v1()
                event.struct_size = UInt32(MemoryLayout<agenthost_event_v1>.size)
                event.kind = agenthost_event_kind_t(kind)
                event.data = work.toOpaque()
                event.cancelled = cancelled
                withUnsafePointer(to: event) { PluginEvents.dispatch(instanceContext: nil, $0) }
            }
        }
        #expect(ran.withLock { $0 } == 2, "fired events run, cancelled ones only release")
    }

    @Test func anOldHostHasNoRunLog() {
        let host = FakeHost(abiMinor: 0)
        let conn = host.connect(route: "/agents/test", subject: "alice")
        let connection = Connection(handle: conn, host: PluginHost(api: host.api, context: nil))
        #expect(!connection.pluginHost.hasRunLog)
        #expect(throws: RunLogError(.unavailable, "create")) { try RunLog.create(on: connection, key: "k") }
    }

    @Test func anonymousLogsOpenOnlyWithTheirSecret() throws {
        let setup = Setup(subject: "")
        let secret = "0123456789abcdef0123456789abcdef"
        let log = try RunLog.create(on: setup.connection, key: "anon", secret: secret)
        #expect(throws: RunLogError(.notFound, "open")) { try RunLog.open(on: setup.connection, key: "anon") }
        #expect(throws: RunLogError(.notFound, "open")) {
            try RunLog.open(on: setup.connection, key: "anon", secret: String(secret.reversed()))
        }
        let reader = try RunLog.open(on: setup.connection, key: "anon", secret: secret)
        reader.release()
        log.release()
    }
}
