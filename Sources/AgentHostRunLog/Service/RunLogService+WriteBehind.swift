import AgentHostCore
import Dispatch
import Logging
import Metrics
import Synchronization
import NIOConcurrencyHelpers
import NIOCore

/// The write-behind thread's work: store new logs and entries in one transaction per cycle, apply retention,
/// bound memory while the store fails, follow other processes (their new logs, signals for our writers).
extension RunLogService {
    /// One cycle; returns whether this process has work for the next one soon (logs in memory, signals to send).
    func writeBehindCycle() -> Bool {
        let now = self.clock.nowMilliseconds()
        self.endOrphansIfDue()
        self.storeNewLogs(now: now)
        self.storeEntries()
        self.boundMemory()
        self.sendSignals()
        let following = self.pollStore(now: now)
        return self.state.withLockedValue { state in
            self.forgetFinishedLocked(&state)
            return !state.local.isEmpty || !state.outgoingSignals.isEmpty || following
        }
    }

    /// Inserts the logs created since the last cycle. A run that already ended (most: they last less than a cycle)
    /// is inserted ended, with its entries, in the same statement pair: no UPDATE follows for it.
    private func storeNewLogs(now: Int64) {
        let pending: [(log: LiveLog, new: NewRunLog, complete: RunLogWrite?)] = self.state.withLockedValue { state in
            state.local.values.filter { if case .pending = $0.store { return true } else { return false } }
                .sorted { $0.creationOrder < $1.creationOrder }
                .map { log in
                    var record = RunLogRecord(route: log.name.route, key: log.name.key, ownerIssuer: log.owner.issuer,
                                              ownerSubject: log.owner.subject, secretHash: log.secretHash,
                                              writer: self.configuration.incarnation,
                                              createdMilliseconds: log.createdMilliseconds)
                    // Whole in memory (nothing dropped while a store failed, no retention yet): stored at once.
                    let whole = log.persistedSeq == 0 && log.firstSeq == 1 && log.pendingDropBefore == nil
                        && UInt64(log.tail.count) == log.lastSeq && (log.tail.first?.seq ?? 1) == 1
                    guard !log.isLive, whole else { return (log, NewRunLog(record: record), nil) }
                    let entries = Array(log.tail)
                    record.status = log.status
                    record.endedMilliseconds = log.endedMilliseconds
                    record.lastSeq = log.lastSeq
                    record.bytes = Int64(log.tailBytes)
                    return (log, NewRunLog(record: record, entries: entries),
                            RunLogWrite(logID: 0, entries: entries, end: (log.status, log.endedMilliseconds)))
                }
        }
        guard !pending.isEmpty else { return }
        // One transaction for every log created since the last cycle.
        let results: [Result<Int64, RunLogStoreError>]
        do {
            results = try self.backend.createLogs(pending.map(\.new))
        } catch {
            self.health.failed(error)
            return
        }
        var conflicts: [LiveLog] = []
        var wake: [LogWatch] = []
        var failure: RunLogStoreError?
        var stored = 0
        var storedBytes = 0
        self.state.withLockedValue { state in
            for (item, result) in zip(pending, results) {
                switch result {
                case .success(let id):
                    item.log.store = .stored(id)
                    var record = item.new.record
                    record.id = id
                    // The index holds the log as it was when inserted; ended logs get their final state when they
                    // leave memory (`forgetFinishedLocked`).
                    state.index[item.log.name] = record
                    if var write = item.complete {
                        write.logID = id
                        self.applyStored(write, bytes: Int(item.new.record.bytes), to: item.log, state: &state)
                        stored += write.entries.count
                        storedBytes += Int(item.new.record.bytes)
                    }
                case .failure(let error) where error.kind == .exists:
                    // Another process created the same name between our index refresh and now (a client sent one
                    // run to two workers at once). The store has the other copy; this one cannot be stored, and
                    // kept in memory it would be a second run under one id that no resume ever finds. It ends
                    // here, saying why: its writer's appends are CLOSED, its watchers see the end.
                    item.log.store = .conflict
                    conflicts.append(item.log)
                    wake += self.endAbandonedLocked(item.log, reason: TerminalEntry.takenReason, state: &state)
                case .failure(let error):
                    failure = error  // stays pending: tried again next cycle
                }
            }
        }
        if stored > 0 {
            self.metrics.entriesWritten.increment(by: stored)
            self.metrics.bytesWritten.increment(by: storedBytes)
        }
        // A worker whose runs all end within a cycle stores nothing but these inserts: without this, one failure
        // would leave its opens answering UNAVAILABLE for good. Runs inserted whole (row and entries) are entries
        // stored: the streak ends (before, it went on until a run spanned two cycles, and the history API
        // answered 503 meanwhile).
        if let failure {
            self.health.failed(failure)
        } else if stored > 0 {
            self.health.succeeded()
        } else {
            self.health.insertsSucceeded()
        }
        for watch in wake { watch.schedulePump() }
        for log in conflicts {
            self.logger.warning("a run was started on two workers at once: the copy stored second was stopped",
                                metadata: ["route": "\(log.name.route)"])
        }
    }

    private struct Job {
        var log: LiveLog
        var write: RunLogWrite
        var bytes: Int
    }

    /// Writes every stored log's new entries, ends and retention drops in one transaction.
    private func storeEntries() {
        let jobs: [Job] = self.state.withLockedValue { state in
            var jobs: [Job] = []
            for log in state.local.values {
                guard let id = log.storeID else { continue }
                var write = RunLogWrite(logID: id, dropBefore: log.pendingDropBefore)
                var bytes = 0
                // Straight to the first unpersisted entry: the tail also holds stored ones (for watchers).
                let skip = Int(min(UInt64(log.tail.count), (log.persistedSeq + 1) &- min(log.tailFirstSeq, log.persistedSeq + 1)))
                for entry in log.tail[log.tail.index(log.tail.startIndex, offsetBy: skip)...] {
                    write.entries.append(entry)
                    bytes += entry.bytes.count
                }
                if !log.isLive && !log.endPersisted { write.end = (log.status, log.endedMilliseconds) }
                if !write.entries.isEmpty || write.end != nil || write.dropBefore != nil {
                    jobs.append(Job(log: log, write: write, bytes: bytes))
                }
            }
            return jobs
        }
        guard !jobs.isEmpty else { return }
        do {
            try self.backend.write(jobs.map(\.write))
        } catch {
            self.health.failed(error)
            return
        }
        self.health.succeeded()
        let entries = jobs.reduce(0) { $0 + $1.write.entries.count }
        self.metrics.entriesWritten.increment(by: entries)
        self.metrics.bytesWritten.increment(by: jobs.reduce(0) { $0 + $1.bytes })
        self.metrics.batchEntries.record(entries)
        self.state.withLockedValue { state in
            for job in jobs {
                self.applyStored(job.write, bytes: job.bytes, to: job.log, state: &state)
            }
        }
    }

    /// Under the lock: what a successful write means for a log in memory.
    func applyStored(_ write: RunLogWrite, bytes: Int, to log: LiveLog, state: inout State) {
        if let last = write.entries.last {
            let newlyPersisted = write.entries.reduce(0) { $0 + ($1.seq > log.persistedSeq ? $1.bytes.count : 0) }
            log.persistedSeq = max(log.persistedSeq, last.seq)
            log.unpersistedBytes -= newlyPersisted
            state.unpersistedBytes -= newlyPersisted
            log.storedChunks.append((last.seq, bytes))
            log.storedBytes += bytes
        }
        if let dropBefore = write.dropBefore, log.pendingDropBefore == dropBefore { log.pendingDropBefore = nil }
        if write.end != nil {
            log.endPersisted = true
            state.endedSincePrune += 1
        }
        // Byte retention: the oldest stored chunks go (at least one chunk is kept).
        let limit = self.configuration.retention.maxBytesPerLog
        while log.storedBytes > limit, log.storedChunks.count > 1, let chunk = log.storedChunks.popFirst() {
            log.storedBytes -= chunk.bytes
            log.firstSeq = chunk.last + 1
            log.pendingDropBefore = log.firstSeq
        }
        // Memory keeps unpersisted entries, and stored ones up to the tail budget: its share of the total.
        let budget = min(self.configuration.tailBytesPerLog, self.configuration.tailBytesTotal / max(1, state.local.count))
        while let first = log.tail.first,
            first.seq < log.firstSeq || (first.seq <= log.persistedSeq && log.tailBytes > budget)
        {
            if first.seq > log.persistedSeq {
                log.unpersistedBytes -= first.bytes.count
                state.unpersistedBytes -= first.bytes.count
            }
            log.dropOldestTailEntry()
        }
    }

    /// Under the lock: ended logs that nothing uses any more leave memory (the store answers for them now). Checked
    /// every cycle, not only after a write: a log usually ends, is stored, and only then loses its last watcher or
    /// handle (a socket still reading the run's end), and must not stay in memory for that.
    func forgetFinishedLocked(_ state: inout State) {
        for log in state.local.values where !log.isLive && log.watches.isEmpty && log.handles == 0 {
            let stored = log.endPersisted && log.pendingDropBefore == nil
            // A log another process's key took (.conflict) is never stored: once ended and unused it just goes,
            // and its entries no longer count as waiting for the store.
            let unstorable = log.isConflict
            guard stored || unstorable else { continue }
            if unstorable {
                state.unpersistedBytes -= log.unpersistedBytes
                log.unpersistedBytes = 0
            }
            state.local[log.name] = nil
            // The index has had the log since it was stored; its entry gets the final state. No entry means
            // retention deleted the log meanwhile: it must not come back.
            if let id = log.storeID, state.index[log.name] != nil {
                state.index[log.name] = RunLogRecord(
                    id: id, route: log.name.route, key: log.name.key, ownerIssuer: log.owner.issuer,
                    ownerSubject: log.owner.subject, secretHash: log.secretHash, writer: self.configuration.incarnation,
                    status: log.status, createdMilliseconds: log.createdMilliseconds,
                    endedMilliseconds: log.endedMilliseconds, firstSeq: log.firstSeq, lastSeq: log.lastSeq,
                    bytes: Int64(log.storedBytes))
            }
        }
    }

    /// While the store fails, unpersisted entries pile up: past the limit the oldest of the biggest logs go.
    private func boundMemory() {
        let limit = self.configuration.maxUnpersistedBytes
        let dropped: Int = self.state.withLockedValue { state in
            guard state.unpersistedBytes > limit else { return 0 }
            var dropped = 0
            let biggestFirst = state.local.values.sorted { $0.unpersistedBytes > $1.unpersistedBytes }
            for log in biggestFirst where state.unpersistedBytes > limit {
                // Keep the newest entry of each log: watchers need something to stand on.
                while state.unpersistedBytes > limit, log.tail.count > 1, let first = log.tail.first {
                    let size = log.dropOldestTailEntry()
                    if first.seq > log.persistedSeq {
                        log.persistedSeq = first.seq
                        log.unpersistedBytes -= size
                        state.unpersistedBytes -= size
                    }
                    if log.firstSeq <= first.seq, log.storeID == nil { log.firstSeq = first.seq + 1 }
                    dropped += 1
                }
            }
            return dropped
        }
        if dropped > 0 {
            self.metrics.droppedEntries.increment(by: dropped)
            self.logger.warning("the run log store is failing and live runs reached their memory limit: oldest entries dropped",
                                metadata: ["entries": "\(dropped)", "limit_bytes": "\(limit)"])
        }
    }

    /// Queues the signals made here for writers in other processes.
    private func sendSignals() {
        let outgoing: [RunLogSignal] = self.state.withLockedValue { state in
            defer { state.outgoingSignals = [] }
            return state.outgoingSignals
        }
        for (index, signal) in outgoing.enumerated() {
            do {
                try self.backend.addSignal(logID: signal.logID, data: signal.data)
            } catch {
                self.health.failed(error)
                self.state.withLockedValue { $0.outgoingSignals.insert(contentsOf: outgoing[index...], at: 0) }
                return
            }
        }
    }

    /// Signals for our writers from other processes, other processes' new logs, retention. Returns whether a live
    /// log of another process is being followed (the next cycle should come soon).
    private func pollStore(now: Int64) -> Bool {
        let ours: [Int64: LiveLog] = self.state.withLockedValue { state in
            var ours: [Int64: LiveLog] = [:]
            for log in state.local.values where log.isLive && log.writerHandle != nil {
                if let id = log.storeID { ours[id] = log }
            }
            return ours
        }
        // Only a sibling process signals through the store: a process alone on it delivers its own signals directly
        // (`signal`), and spares the store a read every cycle.
        if self.backend.isShared, !ours.isEmpty, let signals = try? self.backend.takeSignals(logIDs: Array(ours.keys)) {
            for signal in signals {
                guard let log = ours[signal.logID] else { continue }
                let delivery: (RunLogSignalSink, UInt64)? = self.state.withLockedValue { _ in
                    guard let sink = log.signalSink, let writer = log.writerHandle else { return nil }
                    return (sink, writer)
                }
                guard let (sink, writer) = delivery else { continue }
                let event = DeferredEvent(kind: .logSignal, id: writer, context: 0, cancelled: false, logBytes: signal.data)
                log.signalQueue.async { sink(event) }
            }
        }
        // A process alone on its store puts every log it creates in the index itself; only a shared store has logs
        // from elsewhere to learn of. (Re-reading them every cycle was most of the host's CPU at 1,000 runs/s.)
        // (And until the index could be read once: a store that failed at start.)
        if self.backend.isShared || !self.state.withLockedValue({ $0.indexLoaded }) { self.refreshIndex() }
        let following = self.refreshOpenStoreLogs()
        self.pruneIfDue(now: now)
        return following
    }

    /// Learns the logs other processes created; `full` reads every stored log again (after a prune) and swaps the
    /// index at once, so a log_open never sees it half built.
    func refreshIndex(full: Bool = false) {
        var from = full ? 0 : self.state.withLockedValue { $0.indexedUpTo }
        var fresh: [LogName: RunLogRecord] = [:]
        do {
            while true {
                let records = try self.backend.logs(createdAfter: from, limit: 1000)
                guard let last = records.last else { break }
                for record in records { fresh[LogName(record)] = record }
                from = last.id
            }
        } catch {
            self.health.failed(error, write: false)
            return
        }
        self.state.withLockedValue { state in
            if full {
                state.index = fresh
            } else {
                state.index.merge(fresh) { _, new in new }
            }
            state.indexedUpTo = max(full ? 0 : state.indexedUpTo, from)
            state.indexLoaded = true
        }
    }

    /// Live store logs held through handles (another process writes them): their latest state, for log_info,
    /// signals and watches, read in one query for all of them. A watch waiting on one is woken when its last seq
    /// or status changed. Returns whether any is followed.
    private func refreshOpenStoreLogs() -> Bool {
        let logs: [Int64: LiveLog] = self.state.withLockedValue { state in
            var logs: [Int64: LiveLog] = [:]
            for (id, log) in state.remote where log.isLive { logs[id] = log }
            return logs
        }
        guard !logs.isEmpty else { return false }
        let records: [Int64: RunLogRecord]
        do {
            records = try self.backend.logs(ids: Array(logs.keys))
        } catch {
            self.health.failed(error, write: false)
            return true
        }
        let wake: [LogWatch] = self.state.withLockedValue { state in
            var wake: [LogWatch] = []
            for (id, log) in logs {
                if let record = records[id] {
                    guard log.refresh(from: record) else { continue }
                } else {
                    // Deleted from the store while live (retention, or another server's cleanup): over, with no
                    // status to tell.
                    log.status = ""
                }
                wake += Self.takeWaiting(log)
            }
            return wake
        }
        self.logsEnded.signal()  // logs found ended or deleted in the store
        for watch in wake { watch.schedulePump() }
        return true
    }

    private func pruneIfDue(now: Int64) {
        let interval = self.configuration.pruneInterval.nanoseconds / 1_000_000
        // On the timer, and also as soon as enough logs ended since the last prune: at thousands of runs a second,
        // a minute's worth of ended logs would hold far more than the limits allow.
        let every = max(64, self.configuration.retention.maxEndedLogs / 8)
        let (due, timed): (Bool, Bool) = self.state.withLockedValue { state in
            let timed = now - state.lastPrune >= interval
            guard timed || state.endedSincePrune >= every else { return (false, false) }
            state.lastPrune = now
            state.endedSincePrune = 0
            return (true, timed)
        }
        guard due else { return }
        let pruned: [PrunedLog]
        do {
            pruned = try self.backend.prune(self.configuration.retention, nowMilliseconds: now)
        } catch {
            self.health.failed(error)
            return
        }
        self.state.withLockedValue { state in
            // By id too: the name may since belong to a newer log (a key used again after its log was pruned).
            for log in pruned where state.index[log.name]?.id == log.id { state.index[log.name] = nil }
        }
        // Sibling workers prune the shared store too: what they deleted is learnt by reading the whole index again,
        // on the timer only. Until then an open or create that hits another process's log in the index checks the
        // store first (`dropIfPrunedBySibling`).
        if self.backend.isShared && timed { self.refreshIndex(full: true) }
    }
}
