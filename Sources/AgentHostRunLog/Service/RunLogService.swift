import Dispatch
import Metrics
import AgentHostCore
import Crypto
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// The host's run logs: what the plugin function table's log_ functions call.
///
/// Live logs this process writes are held in memory (a recent tail of entries, the last seq, the writer, the
/// watches); a write-behind thread stores them in batches, so an append only copies into memory. Watches deliver on
/// their connection's event loop. Every method here is safe from any thread and never blocks on the store.
public final class RunLogService: Sendable {
    let backend: any RunLogBackend
    let configuration: RunLogConfiguration
    let clock: any RunLogClock
    let logger: Logger
    let threadPool: NIOThreadPool
    let metrics: RunLogMetrics
    let health: StoreHealth
    private let writeBehind: WriteBehindThread
    /// Signalled whenever a log stops being live (ended by its writer, by the host, or found ended or deleted in
    /// the store): a draining generation waits on it for its last run.
    public let logsEnded = StateChangeSignal()

    struct Handle {
        var instance: UInt64
        var log: LiveLog
        var writer: Bool
        var watches: Set<UInt64> = []
    }

    struct State {
        var nextHandle: UInt64 = 1
        var nextWatch: UInt64 = 1
        var handles: [UInt64: Handle] = [:]
        /// Logs this process writes (live, or ended and not yet stored).
        var local: [LogName: LiveLog] = [:]
        /// Every log the store has, as last read (the write-behind thread follows other processes' new logs).
        var index: [LogName: RunLogRecord] = [:]
        var indexedUpTo: Int64 = 0
        /// False until the store could be read once: a log_open of an unknown key is UNAVAILABLE until then.
        var indexLoaded = false
        /// Logs of the store this process does not write, held through handles, by store id: every handle and
        /// watch of one such log shares one object, so the store is polled once per log, not once per watcher.
        var remote: [Int64: LiveLog] = [:]
        var watches: [UInt64: LogWatch] = [:]
        /// Watch ids by connection handle: a closing connection finds its own without a scan.
        var watchesByConnection: [UInt64: Set<UInt64>] = [:]
        var unpersistedBytes = 0
        /// Signals for writers in other processes, to be queued in the store by the write-behind thread.
        var outgoingSignals: [RunLogSignal] = []
        var stopped = false
        /// The runs a previous server left live were ended (or there is nothing to end here).
        var orphansEnded = false
        /// When retention last ran (clock ms).
        var lastPrune: Int64 = 0
        /// Logs whose end was stored since the last prune (see `pruneIfDue`).
        var endedSincePrune = 0
    }

    /// NIO's lock (a plain pthread mutex), not `Synchronization.Mutex`: on Linux that one is a priority-inheritance
    /// futex, and a contended PI futex always takes the kernel's rt-mutex path. This state is taken by every
    /// append (Swift's pool), every watch pump (the event loops) and the write-behind thread; `perf` at 100
    /// clients on two cores put that path at ~8% of the host's CPU and agent runs ~20% slower than before the run
    /// log; with this lock they are level.
    let state = NIOLockedValueBox(State())

    /// Store reads for watches and the history API run on the service's own two-thread pool, writes on its
    /// write-behind thread: neither ever on an event loop or Swift's cooperative pool.
    /// - Parameters:
    ///   - backend: the store (SQLite in a state dir, or memory).
    ///   - clock: wall-clock milliseconds for created/ended times and retention (tests inject one).
    public init(backend: any RunLogBackend, configuration: RunLogConfiguration = RunLogConfiguration(),
                clock: any RunLogClock = SystemRunLogClock(), logger: Logger) {
        self.backend = backend
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.threadPool = NIOThreadPool(numberOfThreads: 2)
        let metrics = RunLogMetrics()
        self.metrics = metrics
        self.health = StoreHealth(logger: logger, metrics: metrics)
        self.writeBehind = WriteBehindThread(interval: configuration.flushInterval,
                                             idleInterval: configuration.idleInterval)
    }

    /// Opens the store, ends the logs a previous incarnation left live (when this process owns the state dir),
    /// loads the index of stored logs, and starts the write-behind thread. A store that fails is logged; the
    /// service then runs in memory and retries.
    public func start() async {
        self.threadPool.start()
        try? await self.threadPool.runIfActive { self.prepareStore() }
        self.writeBehind.start { [self] in self.writeBehindCycle() }
    }

    /// `start()` for an in-memory backend, whose calls do not block (the function table's fallback service).
    public func startInMemory() {
        self.threadPool.start()
        self.prepareStore()
        self.writeBehind.start { [self] in self.writeBehindCycle() }
    }

    private func prepareStore() {
        self.endOrphansIfDue()
        self.refreshIndex()
    }

    /// Ends the runs a previous server left live, once: at start, or as soon as the store works if it failed then.
    func endOrphansIfDue() {
        guard self.configuration.endOrphansAtStart, !self.state.withLockedValue({ $0.orphansEnded }) else { return }
        do {
            let ended = try self.endOrphans(where: self.configuration.incarnation, excluding: true,
                                            reason: TerminalEntry.restartReason)
            self.state.withLockedValue { $0.orphansEnded = true }
            if ended > 0 {
                self.logger.info("ended the runs a previous server left live", metadata: ["runs": "\(ended)"])
            }
        } catch {
            self.health.failed(error)
        }
    }

    /// Stores what is left and stops the thread.
    public func shutdown() async {
        self.state.withLockedValue { $0.stopped = true }
        await self.writeBehind.stop()
        try? await self.threadPool.shutdownGracefully()
        self.backend.didStop()
    }

    /// Logs this process holds in memory: live ones, and ended ones a handle or a watch still uses.
    public var logsInMemory: Int { self.state.withLockedValue { $0.local.count } }

    /// Entry bytes this process's logs hold in memory (their tails: unstored entries and recent stored ones).
    public var tailBytesInMemory: Int { self.state.withLockedValue { $0.local.values.reduce(0) { $0 + $1.tailBytes } } }

    /// Whether the store's last writes failed (live runs are then kept in memory only).
    public var storeIsFailing: Bool { self.health.isFailing }

    /// Waits for one write-behind cycle to complete (what was appended before is stored, unless the store fails).
    public func flush() async {
        await self.writeBehind.flush()
    }

    /// Ends the live logs of a writer incarnation (a worker process that died), or of every other incarnation
    /// (`excluding`: a restart). Each gets the terminal entry and status "error". Blocks: call off the loops.
    @discardableResult
    public func endOrphans(where incarnation: String, excluding: Bool, reason: String) throws -> Int {
        let orphans = try self.backend.liveLogs(writer: incarnation, excluding: excluding)
        guard !orphans.isEmpty else { return 0 }
        let now = self.clock.nowMilliseconds()
        try self.backend.write(orphans.map { log in
            // The dead writer's last entries may have reached sockets without reaching the store (the live path
            // never waits for it): a client may hold seq lastSeq + 1 and more. Numbering the terminal entry
            // lastSeq + 1 would give it a number such a client already has (with other bytes), and its resume
            // would never see the run end. So it skips past every number the writer could have given out
            // unstored; readers see the gap (the agent SDK says resume_gap), then the terminal entry.
            // A last_seq no writer could have reached (a row damaged behind the host's back) leaves no room for
            // that number: the log is ended without the entry rather than numbered past what the store holds.
            let room = UInt64(Int64.max) - 1 - RunLogConfiguration.orphanSeqGap
            guard log.lastSeq <= room else { return RunLogWrite(logID: log.id, entries: [], end: ("error", now)) }
            let seq = log.lastSeq + 1 + RunLogConfiguration.orphanSeqGap
            return RunLogWrite(logID: log.id, entries: [RunLogEntry(seq: seq, bytes: TerminalEntry.bytes(
                reason: reason, key: log.key, seq: seq, milliseconds: now))], end: ("error", now))
        })
        return orphans.count
    }

    // MARK: Creating and opening

    /// log_create: a new live log on `route`, written through the returned handle.
    public func create(instance: UInt64, route: String, key: UnsafeRawBufferPointer, owner: RunLogOwner,
                       secret: UnsafeRawBufferPointer, signalContext: UInt, signalSink: @escaping RunLogSignalSink)
        -> Result<UInt64, RunLogFailure>
    {
        guard (1 ... RunLogConfiguration.maxKeyBytes).contains(key.count) else { return .failure(.badArgument) }
        var secretHash: [UInt8] = []
        if owner.isAnonymous {
            guard (RunLogConfiguration.minSecretBytes ... RunLogConfiguration.maxSecretBytes).contains(secret.count)
            else { return .failure(.badArgument) }
            secretHash = Self.secretHash(secret)
        }
        let name = LogName(route: route, owner: owner, secretHash: secretHash, key: Array(key))
        let checked = self.dropIfPrunedBySibling(name)
        // A sibling worker's log of the same name that this process's index has not learnt of yet: the same
        // point read as `open` on a miss (see there), so the owner is told EXISTS instead of getting a second
        // run under the id, kept in memory only.
        if self.backend.isShared, checked != .absent,
            self.state.withLockedValue({ $0.local[name] == nil && $0.index[name] == nil }),
            (try? self.backend.findLogIfOpen(route: route, issuer: owner.issuer, subject: owner.subject,
                                             secretHash: secretHash, key: Array(key))) ?? nil != nil
        {
            return .failure(.exists)
        }
        let now = self.clock.nowMilliseconds()
        // The write-behind thread may be idle: a new run is its cue to store often again.
        defer { self.writeBehind.busy() }
        return self.state.withLockedValue { state in
            guard !state.stopped else { return .failure(.unavailable) }
            if state.local[name] != nil || state.index[name] != nil { return .failure(.exists) }
            let handle = state.nextHandle
            let log = LiveLog(name: name, createdMilliseconds: now, local: true, store: .pending)
            log.creationOrder = handle
            state.nextHandle += 1
            log.writerHandle = handle
            log.handles = 1
            log.signalSink = { event in
                var event = event
                event.context = signalContext
                signalSink(event)
            }
            state.local[name] = log
            state.handles[handle] = Handle(instance: instance, log: log, writer: true)
            self.metrics.liveLogs.increment()
            return .success(handle)
        }
    }

    /// log_open: a handle for reading and signalling an existing log (this process's or the store's).
    public func open(instance: UInt64, route: String, key: UnsafeRawBufferPointer, owner: RunLogOwner,
                     secret: UnsafeRawBufferPointer) -> Result<UInt64, RunLogFailure> {
        guard (1 ... RunLogConfiguration.maxKeyBytes).contains(key.count),
            secret.count <= RunLogConfiguration.maxSecretBytes
        else { return .failure(.badArgument) }
        let secretHash = owner.isAnonymous && !secret.isEmpty ? Self.secretHash(secret) : []
        // An anonymous caller without a secret names no log.
        guard !owner.isAnonymous || !secretHash.isEmpty else { return .failure(.notFound) }
        let name = LogName(route: route, owner: owner, secretHash: secretHash, key: Array(key))
        if self.dropIfPrunedBySibling(name) == .absent { return .failure(.notFound) }
        if let opened = self.state.withLockedValue({ self.openLocked(name, instance: instance, secretHash: secretHash, &$0) }) {
            return opened
        }
        // Not in memory. With worker processes sharing the store, a sibling may have created it since the index was
        // last refreshed (every 100 ms when idle): a client that drops its socket and resumes at once lands on
        // another worker within that window. One point read by the log's unique key answers it. It runs on the
        // caller's thread (an event loop), so only on an open store (never opening or migrating it here): a WAL
        // reader never waits for the writer, the lookup is one index probe of a page SQLite most likely has
        // cached, and only a name this process does not know pays it (a flood of unknown ids is bounded by the
        // client's message rate limit). A single process knows every log of its store: it never reads here.
        let indexLoaded = self.state.withLockedValue { $0.indexLoaded }
        guard self.backend.isShared else { return .failure(indexLoaded ? .notFound : .unavailable) }
        let found: RunLogRecord?
        do {
            found = try self.backend.findLogIfOpen(route: route, issuer: owner.issuer, subject: owner.subject,
                                                   secretHash: secretHash, key: Array(key))
        } catch {
            return .failure(.unavailable)
        }
        // A store whose writes fail may not hold a run a sibling created lately: UNAVAILABLE (try again), not
        // NOT_FOUND (which a client takes as "this run never was").
        guard let record = found else {
            return .failure(indexLoaded && !self.health.writesAreFailing ? .notFound : .unavailable)
        }
        return self.state.withLockedValue { state in
            if state.index[name] == nil { state.index[name] = record }
            return self.openLocked(name, instance: instance, secretHash: secretHash, &state) ?? .failure(.notFound)
        }
    }

    /// A reader handle on the log `name` if this process knows it (its own, or the store's index); nil if not.
    private func openLocked(_ name: LogName, instance: UInt64, secretHash: [UInt8], _ state: inout State)
        -> Result<UInt64, RunLogFailure>?
    {
        let log: LiveLog
        // A local log that lost its name to a sibling's (`.conflict`) is ended and on its way out: an open reaches
        // the stored run, which is the one that goes on (read from the store if the index has not learnt it yet).
        if let local = state.local[name], !local.isConflict {
            log = local
        } else if let record = state.index[name] {
            if let shared = state.remote[record.id] {
                log = shared
            } else {
                log = LiveLog(record: record)
                state.remote[record.id] = log
            }
        } else {
            return nil
        }
        guard Self.owns(log: log, caller: name.owner, secretHash: secretHash) else { return .failure(.notFound) }
        let handle = state.nextHandle
        state.nextHandle += 1
        log.handles += 1
        state.handles[handle] = Handle(instance: instance, log: log, writer: false)
        return .success(handle)
    }

    /// Workers sharing a store each prune it, and learn what a sibling pruned only when they read their whole
    /// index again (on the prune timer); the index keeps the status a log had when it was first read, too. Until
    /// then an index entry may name a log gone from the store: an open would hand out a handle on nothing, and a
    /// create of the key would be refused EXISTS. So a non-local index hit is checked with one point read (only
    /// opens of another process's log pay it: a resume on another worker, a finished run read again, a key used
    /// again). Live entries are checked too: a log first indexed while live may have ended and been pruned since.
    /// Like `open`'s miss, the read runs on the caller's thread (an event loop) and only on an open store: one
    /// probe of the name's key, which a WAL reader never waits for.
    /// Returns `.absent` when the store does not have the log (the index entry is gone too); a different log under
    /// the name (the key used again) or a newer state of the same one replaces the entry.
    func dropIfPrunedBySibling(_ name: LogName) -> SiblingCheck {
        guard self.backend.isShared else { return .notChecked }
        let known: Int64? = self.state.withLockedValue { state in
            guard state.local[name] == nil, let record = state.index[name] else { return nil }
            return record.id
        }
        guard let known else { return .notChecked }
        let found: RunLogRecord?
        do {
            found = try self.backend.findLogIfOpen(route: name.route, issuer: name.owner.issuer,
                                                   subject: name.owner.subject, secretHash: name.secretHash,
                                                   key: name.key)
        } catch {
            return .notChecked  // the store cannot say: the index stands
        }
        return self.state.withLockedValue { state in
            guard state.index[name]?.id == known else { return .notChecked }  // changed meanwhile: that stands
            state.index[name] = found
            return found == nil ? .absent : .present
        }
    }

    enum SiblingCheck {
        case notChecked, absent, present
    }

    /// The SHA-256 the host keeps instead of an anonymous owner's secret.
    static func secretHash(_ secret: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bufferPointer: secret)
        return Array(hasher.finalize())
    }

    /// Whether `caller` may use `log`: the same identity, or for an anonymous log an anonymous caller with the
    /// same secret (its hash compared in constant time). Anything else looks exactly like a missing log.
    static func owns(log: LiveLog, caller: RunLogOwner, secretHash: [UInt8]) -> Bool {
        guard log.owner == caller else { return false }
        guard caller.isAnonymous else { return true }
        return !secretHash.isEmpty && ConstantTime.equals(log.secretHash, secretHash)
    }

    // MARK: Writing

    /// log_append: copies the entry into memory and returns its seq; the store gets it behind.
    public func append(handle: UInt64, bytes: UnsafeRawBufferPointer) -> Result<UInt64, RunLogFailure> {
        guard bytes.count <= self.configuration.maxEntryBytes else { return .failure(.badArgument) }
        let entryBytes = Array(bytes)
        var wake: [LogWatch] = []
        let result: Result<UInt64, RunLogFailure> = self.state.withLockedValue { state in
            guard let entry = state.handles[handle], entry.writer else { return .failure(.badArgument) }
            let log = entry.log
            guard log.isLive else { return .failure(.closed) }
            log.lastSeq += 1
            log.tail.append(RunLogEntry(seq: log.lastSeq, bytes: entryBytes))
            log.tailBytes += entryBytes.count
            log.unpersistedBytes += entryBytes.count
            state.unpersistedBytes += entryBytes.count
            wake = Self.takeWaiting(log)
            return .success(log.lastSeq)
        }
        for watch in wake { watch.schedulePump() }
        return result
    }

    /// log_end through the writer handle.
    public func end(handle: UInt64, status: String) -> RunLogFailure? {
        guard (1 ... RunLogConfiguration.maxStatusBytes).contains(status.utf8.count), status != RunLogRecord.live else {
            return .badArgument
        }
        var wake: [LogWatch] = []
        let failure: RunLogFailure? = self.state.withLockedValue { state in
            guard let entry = state.handles[handle], entry.writer else { return .badArgument }
            guard entry.log.isLive else { return .closed }
            self.endLocked(entry.log, status: status)
            wake = Self.takeWaiting(entry.log)
            return nil
        }
        for watch in wake { watch.schedulePump() }
        return failure
    }

    private func endLocked(_ log: LiveLog, status: String) {
        defer { self.logsEnded.signal() }
        log.status = status
        log.endedMilliseconds = self.clock.nowMilliseconds()
        log.writerHandle = nil
        log.signalSink = nil
        self.metrics.liveLogs.decrement()
    }

    /// The writer went away without log_end (or the log cannot be kept: `reason`): the terminal entry, then status
    /// "error".
    func endAbandonedLocked(_ log: LiveLog, reason: String = TerminalEntry.writerGoneReason, state: inout State)
        -> [LogWatch]
    {
        guard log.isLive else { return [] }
        log.lastSeq += 1
        let bytes = TerminalEntry.bytes(reason: reason, key: log.name.key, seq: log.lastSeq,
                                        milliseconds: self.clock.nowMilliseconds())
        log.tail.append(RunLogEntry(seq: log.lastSeq, bytes: bytes))
        log.tailBytes += bytes.count
        log.unpersistedBytes += bytes.count
        state.unpersistedBytes += bytes.count
        self.endLocked(log, status: "error")
        return Self.takeWaiting(log)
    }

    static func takeWaiting(_ log: LiveLog) -> [LogWatch] {
        var wake: [LogWatch] = []
        for watch in log.watches.values where watch.waiting {
            watch.waiting = false
            wake.append(watch)
        }
        return wake
    }

    /// log_info.
    public func info(handle: UInt64) -> Result<RunLogInfo, RunLogFailure> {
        self.state.withLockedValue { state in
            guard let entry = state.handles[handle] else { return .failure(.badArgument) }
            return .success(entry.log.info)
        }
    }

    // MARK: Watching

    /// log_watch: delivers the log's entries after `afterSeq` to `target` (a connection of the handle's instance).
    public func watch(instance: UInt64, handle: UInt64, target: any RunLogWatchTarget, afterSeq: UInt64,
                      context: UInt) -> Result<UInt64, RunLogFailure> {
        let result: Result<LogWatch, RunLogFailure> = self.state.withLockedValue { state in
            guard var entry = state.handles[handle], entry.instance == instance else { return .failure(.badArgument) }
            let id = state.nextWatch
            state.nextWatch += 1
            let watch = LogWatch(id: id, handle: handle, log: entry.log, target: target, context: context,
                                 afterSeq: afterSeq, service: self)
            entry.watches.insert(id)
            state.handles[handle] = entry
            state.watches[id] = watch
            state.watchesByConnection[target.handle, default: []].insert(id)
            entry.log.watches[id] = watch
            return .success(watch)
        }
        return result.map { watch in
            watch.schedulePump()
            return watch.id
        }
    }

    /// log_unwatch.
    public func unwatch(connection: UInt64, watchID: UInt64) -> RunLogFailure? {
        let watch: LogWatch? = self.state.withLockedValue { state in
            guard let watch = state.watches[watchID], watch.target.handle == connection, !watch.cancelled else {
                return nil
            }
            watch.cancelled = true
            return watch
        }
        guard let watch else { return .closed }
        watch.cancelOnLoop()
        return nil
    }

    /// The connection closed: its watches end (LOG_END cancelled, after on_close).
    public func connectionClosed(_ connection: UInt64) {
        let cancelled: [LogWatch] = self.state.withLockedValue { state in
            var cancelled: [LogWatch] = []
            for id in state.watchesByConnection[connection] ?? [] {
                guard let watch = state.watches[id], !watch.cancelled else { continue }
                watch.cancelled = true
                cancelled.append(watch)
            }
            return cancelled
        }
        for watch in cancelled { watch.cancelOnLoop() }
    }

    /// Under the lock: what `watch` delivers next.
    func nextStep(for watch: LogWatch) -> WatchStep {
        self.state.withLockedValue { state in
            if watch.cancelled { return .cancelled }
            let log = watch.log
            watch.nextSeq = max(watch.nextSeq, log.firstSeq)
            if !log.local {
                // Another process's log: the write-behind thread refreshes its last seq and status every cycle
                // and wakes waiting watches when they change; entries are read from the store.
                guard let id = log.storeID else { return .end("") }
                if watch.nextSeq > log.lastSeq {
                    if !log.isLive { return .end(log.status) }
                    watch.waiting = true
                    return .wait
                }
                return .read(storeID: id, remote: true)
            }
            if watch.nextSeq > log.lastSeq {
                if !log.isLive { return .end(log.status) }
                watch.waiting = true
                return .wait
            }
            let tailFirst = log.tailFirstSeq
            if watch.nextSeq >= tailFirst {
                return .entries(log.tailEntries(from: watch.nextSeq, limit: LogWatch.batchEntries,
                                                maxBytes: LogWatch.batchBytes))
            }
            if let id = log.storeID { return .read(storeID: id, remote: false) }
            // Older entries were never stored (dropped while the store failed): go on from memory.
            watch.nextSeq = tailFirst
            return .entries(log.tailEntries(from: tailFirst, limit: LogWatch.batchEntries,
                                            maxBytes: LogWatch.batchBytes))
        }
    }

    /// The store had none of the entries a watch asked for: skip to what memory holds.
    func skipToTail(_ watch: LogWatch) {
        self.state.withLockedValue { _ in watch.nextSeq = max(watch.nextSeq, watch.log.tailFirstSeq) }
    }

    /// A watch read a store log's record: every watch waiting on the (shared) log hears of what it advanced, or it
    /// would wait for the poll, which then sees nothing new and wakes nobody (and never polls an ended log again).
    func refresh(_ log: LiveLog, from record: RunLogRecord) {
        let wake = self.state.withLockedValue { _ in log.refresh(from: record) ? Self.takeWaiting(log) : [] }
        for watch in wake { watch.schedulePump() }
    }

    func readFailed(_ error: any Error) {
        self.health.failed(error, write: false)
    }

    func watchFinished(_ watch: LogWatch) {
        self.state.withLockedValue { state in
            state.watches[watch.id] = nil
            let connection = watch.target.handle
            state.watchesByConnection[connection]?.remove(watch.id)
            if state.watchesByConnection[connection]?.isEmpty == true { state.watchesByConnection[connection] = nil }
            watch.log.watches[watch.id] = nil
            state.handles[watch.handle]?.watches.remove(watch.id)
        }
    }

    // MARK: Signals

    /// log_signal: to the writer of the log, in this process directly, in another through the store.
    public func signal(handle: UInt64, bytes: UnsafeRawBufferPointer) -> RunLogFailure? {
        guard bytes.count <= RunLogConfiguration.maxSignalBytes else { return .badArgument }
        let data = Array(bytes)
        return self.state.withLockedValue { state -> RunLogFailure? in
            guard let entry = state.handles[handle] else { return .badArgument }
            let log = entry.log
            guard log.isLive else { return .notFound }
            if log.local {
                guard let writer = log.writerHandle, let sink = log.signalSink else { return .notFound }
                let event = DeferredEvent(kind: .logSignal, id: writer, context: 0, cancelled: false, logBytes: data)
                log.signalQueue.async { sink(event) }
            } else {
                guard let id = log.storeID else { return .notFound }
                state.outgoingSignals.append(RunLogSignal(logID: id, data: data))
                self.writeBehind.wake()
            }
            return nil
        }
    }

    // MARK: Releasing

    /// log_release: cancels the handle's watches; the writer handle of a live log ends it (writer gone).
    public func release(handle: UInt64) -> RunLogFailure? {
        var cancelled: [LogWatch] = []
        var wake: [LogWatch] = []
        let found: Bool = self.state.withLockedValue { state in
            guard let entry = state.handles.removeValue(forKey: handle) else { return false }
            (cancelled, wake) = self.releaseLocked(entry, state: &state)
            return true
        }
        for watch in cancelled { watch.cancelOnLoop() }
        for watch in wake { watch.schedulePump() }
        return found ? nil : .badArgument
    }

    /// Live logs the instance writes (its writer handles of logs not ended): what a draining generation finishes.
    public func liveLogsWritten(instance: UInt64) -> Int {
        self.state.withLockedValue { state in
            state.handles.values.reduce(0) { $0 + ($1.instance == instance && $1.writer && $1.log.isLive ? 1 : 0) }
        }
    }

    /// The instance was dropped: every handle it held goes.
    public func releaseAll(instance: UInt64) {
        var cancelled: [LogWatch] = []
        var wake: [LogWatch] = []
        self.state.withLockedValue { state in
            for (id, entry) in state.handles where entry.instance == instance {
                state.handles[id] = nil
                let (c, w) = self.releaseLocked(entry, state: &state)
                cancelled += c
                wake += w
            }
        }
        for watch in cancelled { watch.cancelOnLoop() }
        for watch in wake { watch.schedulePump() }
    }

    private func releaseLocked(_ entry: Handle, state: inout State) -> (cancelled: [LogWatch], wake: [LogWatch]) {
        var cancelled: [LogWatch] = []
        for id in entry.watches {
            if let watch = state.watches[id], !watch.cancelled {
                watch.cancelled = true
                cancelled.append(watch)
            }
        }
        entry.log.handles -= 1
        if !entry.log.local, entry.log.handles == 0, let id = entry.log.storeID, state.remote[id] === entry.log {
            state.remote[id] = nil
        }
        var wake: [LogWatch] = []
        if entry.writer, entry.log.isLive { wake = self.endAbandonedLocked(entry.log, state: &state) }
        return (cancelled, wake)
    }
}
