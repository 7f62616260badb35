import AgentHostCore
import AgentHostRunLog
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A clock the test moves.
final class TestClock: RunLogClock {
    private let now = Mutex<Int64>(1_800_000_000_000)

    func nowMilliseconds() -> Int64 { self.now.withLock { $0 } }

    func advance(milliseconds: Int64) {
        self.now.withLock { $0 += milliseconds }
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "/runlog-test-XXXXXX").utf8CString)
        self.path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.path)
    }
}

/// A connection stand-in for watches: records events; can refuse more (outbound queue above high water).
final class RecordingTarget: RunLogWatchTarget, @unchecked Sendable {
    let handle: UInt64
    let eventLoop: any EventLoop
    private let lock = Mutex<State>(State())

    struct State {
        var events: [DeferredEvent] = []
        /// Deliveries left before the target reports blocked (nil: never).
        var budget: Int?
        var waiter: (@Sendable () -> Void)?
        var ended: [CheckedContinuation<Void, Never>] = []
    }

    init(handle: UInt64, eventLoop: any EventLoop) {
        self.handle = handle
        self.eventLoop = eventLoop
    }

    var events: [DeferredEvent] { self.lock.withLock { $0.events } }
    var entries: [DeferredEvent] { self.events.filter { $0.kind == .logEntry } }
    var end: DeferredEvent? { self.events.first { $0.kind == .logEnd } }

    func deliver(_ next: () -> DeferredEvent?) -> PacedDelivery {
        while true {
            let blocked = self.lock.withLock { state -> Bool in
                if let budget = state.budget, budget <= 0 { return true }
                return false
            }
            if blocked { return .blocked }
            guard let event = next() else { return .drained }
            self.lock.withLock { state in
                state.events.append(event)
                state.budget = state.budget.map { $0 - 1 }
            }
        }
    }

    var isBlocked: Bool { self.lock.withLock { state in state.budget.map { $0 <= 0 } ?? false } }

    func whenWritable(_ body: @escaping @Sendable () -> Void) {
        self.lock.withLock { $0.waiter = body }
    }

    func deliverLast(_ event: DeferredEvent) {
        let waiters = self.lock.withLock { state in
            state.events.append(event)
            defer { state.ended = [] }
            return state.ended
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Stops delivery after `count` more events.
    func block(after count: Int) {
        self.lock.withLock { $0.budget = count }
    }

    /// Lets delivery go on, as a writable channel would.
    func unblock() {
        let waiter = self.lock.withLock { state in
            state.budget = nil
            defer { state.waiter = nil }
            return state.waiter
        }
        if let waiter { self.eventLoop.execute(waiter) }
    }

    var isWaitingForWritable: Bool { self.lock.withLock { $0.waiter != nil } }

    /// Waits until LOG_END arrived.
    func waitForEnd() async {
        await withCheckedContinuation { continuation in
            let done = self.lock.withLock { state -> Bool in
                if state.events.contains(where: { $0.kind == .logEnd }) { return true }
                state.ended.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}

/// Signals a writer got.
final class SignalRecorder: Sendable {
    private let signals = Mutex<[DeferredEvent]>([])
    var received: [DeferredEvent] { self.signals.withLock { $0 } }
    var sink: RunLogSignalSink { { event in self.signals.withLock { $0.append(event) } } }
}

enum Fixture {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    static let logger = Logger(label: "runlog-test")
    static let alice = RunLogOwner(issuer: "https://issuer.test", subject: "alice")
    static let bob = RunLogOwner(issuer: "https://issuer.test", subject: "bob")

    static func fastConfiguration(incarnation: String = RunLogConfiguration.newIncarnation()) -> RunLogConfiguration {
        RunLogConfiguration(flushInterval: .milliseconds(5), pollInterval: .milliseconds(5),
                            pruneInterval: .hours(1), incarnation: incarnation)
    }
}

extension RunLogService {
    func create(_ key: String, owner: RunLogOwner = Fixture.alice, route: String = "/agents/a", secret: String = "",
                instance: UInt64 = 1, signals: SignalRecorder = SignalRecorder()) -> Result<UInt64, RunLogFailure> {
        Array(key.utf8).withUnsafeBytes { keyBytes in
            Array(secret.utf8).withUnsafeBytes { secretBytes in
                self.create(instance: instance, route: route, key: keyBytes,
                            owner: owner, secret: secretBytes, signalContext: 7, signalSink: signals.sink)
            }
        }
    }

    func open(_ key: String, owner: RunLogOwner = Fixture.alice, route: String = "/agents/a", secret: String = "",
              instance: UInt64 = 1) -> Result<UInt64, RunLogFailure> {
        Array(key.utf8).withUnsafeBytes { keyBytes in
            Array(secret.utf8).withUnsafeBytes { secretBytes in
                self.open(instance: instance, route: route, key: keyBytes, owner: owner, secret: secretBytes)
            }
        }
    }

    @discardableResult
    func append(_ handle: UInt64, _ text: String) -> Result<UInt64, RunLogFailure> {
        Array(text.utf8).withUnsafeBytes { self.append(handle: handle, bytes: $0) }
    }

    func signal(_ handle: UInt64, _ text: String) -> RunLogFailure? {
        Array(text.utf8).withUnsafeBytes { self.signal(handle: handle, bytes: $0) }
    }
}

extension DeferredEvent {
    var text: String { String(decoding: self.logBytes, as: UTF8.self) }
    var seq: UInt64 { self.logSeq }
}

extension RunLogBackend {
    /// An identified owner's log (alice's unless told).
    func findLog(route: String, key: [UInt8], owner: RunLogOwner = Fixture.alice) throws -> RunLogRecord? {
        try self.findLog(route: route, issuer: owner.issuer, subject: owner.subject, secretHash: [], key: key)
    }
}

/// A store that counts the entry reads it serves (how often watchers go to the store), and whose writes can be
/// made to fail while its reads go on (a full disk).
final class CountingBackend: RunLogBackend {
    let inner: any RunLogBackend
    private let reads = Atomic<Int>(0)
    var entryReads: Int { self.reads.load(ordering: .relaxed) }
    let writeFailure = Mutex<RunLogStoreError?>(nil)

    init(_ inner: any RunLogBackend) { self.inner = inner }

    private func checkWrite() throws {
        if let failure = self.writeFailure.withLock({ $0 }) { throw failure }
    }

    var isShared: Bool { self.inner.isShared }
    func didStop() { self.inner.didStop() }
    func createLog(_ log: RunLogRecord) throws -> Int64 {
        try self.checkWrite()
        return try self.inner.createLog(log)
    }
    func createLogs(_ logs: [NewRunLog]) throws -> [Result<Int64, RunLogStoreError>] {
        try self.checkWrite()
        return try self.inner.createLogs(logs)
    }
    func write(_ writes: [RunLogWrite]) throws {
        try self.checkWrite()
        try self.inner.write(writes)
    }
    func findLog(route: String, issuer: String, subject: String, secretHash: [UInt8], key: [UInt8]) throws
        -> RunLogRecord?
    {
        try self.inner.findLog(route: route, issuer: issuer, subject: subject, secretHash: secretHash, key: key)
    }
    func findLogIfOpen(route: String, issuer: String, subject: String, secretHash: [UInt8], key: [UInt8]) throws
        -> RunLogRecord?
    {
        try self.inner.findLogIfOpen(route: route, issuer: issuer, subject: subject, secretHash: secretHash, key: key)
    }
    func log(id: Int64) throws -> RunLogRecord? { try self.inner.log(id: id) }
    func logs(ids: [Int64]) throws -> [Int64: RunLogRecord] { try self.inner.logs(ids: ids) }
    func readEntries(logID: Int64, from: UInt64, limit: Int, maxBytes: Int) throws -> [RunLogEntry] {
        self.reads.add(1, ordering: .relaxed)
        return try self.inner.readEntries(logID: logID, from: from, limit: limit, maxBytes: maxBytes)
    }
    func listLogs(issuer: String, subject: String, route: String?, limit: Int) throws -> [RunLogRecord] {
        try self.inner.listLogs(issuer: issuer, subject: subject, route: route, limit: limit)
    }
    func newestLog(issuer: String, subject: String, key: [UInt8]) throws -> RunLogRecord? {
        try self.inner.newestLog(issuer: issuer, subject: subject, key: key)
    }
    func logs(createdAfter afterID: Int64, limit: Int) throws -> [RunLogRecord] {
        try self.inner.logs(createdAfter: afterID, limit: limit)
    }
    func liveLogs(writer incarnation: String, excluding: Bool) throws -> [RunLogRecord] {
        try self.inner.liveLogs(writer: incarnation, excluding: excluding)
    }
    func addSignal(logID: Int64, data: [UInt8]) throws { try self.inner.addSignal(logID: logID, data: data) }
    func takeSignals(logIDs: [Int64]) throws -> [RunLogSignal] { try self.inner.takeSignals(logIDs: logIDs) }
    func prune(_ policy: RunLogRetention, nowMilliseconds: Int64) throws -> [PrunedLog] {
        try self.inner.prune(policy, nowMilliseconds: nowMilliseconds)
    }
}

/// Bytes LZ4 cannot shrink (random letters: it finds no repeats to point back to), for tests that must fill a store:
/// repeated bytes would be stored a hundredfold smaller.
func incompressible(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0 ..< count).map { _ in UInt8(ascii: "a") + UInt8.random(in: 0 ..< 26, using: &generator) }
}
