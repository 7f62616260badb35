import Synchronization

/// A store that keeps everything in this process's memory: used when no state dir is configured, by tests, and by
/// the benchmark's "log off". Runs do not survive a restart. Ended logs are bounded by the retention policy.
public final class MemoryRunLogBackend: RunLogBackend {
    private struct StoredLog {
        var record: RunLogRecord
        /// Entries in seq order (retention drops from the front).
        var entries: [RunLogEntry] = []
    }

    private struct State {
        var nextID: Int64 = 1
        var logs: [Int64: StoredLog] = [:]
        var byName: [LogName: Int64] = [:]
        var signals: [RunLogSignal] = []
    }

    private let state = Mutex(State())

    /// Makes every write, and the reads the service's own thread makes (its index, following logs), fail with this
    /// error while set (tests of the service's failure handling).
    public let failure = Mutex<RunLogStoreError?>(nil)

    public init() {}

    private func checkFailure() throws {
        if let failure = self.failure.withLock({ $0 }) { throw failure }
    }

    public func createLog(_ log: RunLogRecord) throws -> Int64 {
        try self.checkFailure()
        return try self.state.withLock { state in
            if state.byName[LogName(log)] != nil { throw RunLogStoreError.exists }
            var record = log
            record.id = state.nextID
            state.nextID += 1
            state.logs[record.id] = StoredLog(record: record)
            state.byName[LogName(log)] = record.id
            return record.id
        }
    }

    public func createLogs(_ logs: [NewRunLog]) throws -> [Result<Int64, RunLogStoreError>] {
        try self.checkFailure()
        return self.state.withLock { state in
            logs.map { log in
                let name = LogName(log.record)
                if state.byName[name] != nil { return .failure(RunLogStoreError.exists) }
                var record = log.record
                record.id = state.nextID
                state.nextID += 1
                state.logs[record.id] = StoredLog(record: record, entries: log.entries)
                state.byName[name] = record.id
                return .success(record.id)
            }
        }
    }

    public func write(_ writes: [RunLogWrite]) throws {
        try self.checkFailure()
        self.state.withLock { state in
            for write in writes {
                guard var log = state.logs[write.logID] else { continue }
                for entry in write.entries {
                    if let last = log.entries.last, last.seq >= entry.seq {
                        log.entries.removeAll { $0.seq >= entry.seq }
                    }
                    log.entries.append(entry)
                    log.record.lastSeq = max(log.record.lastSeq, entry.seq)
                    log.record.bytes += Int64(entry.bytes.count)
                }
                if let dropBefore = write.dropBefore {
                    let dropped = log.entries.prefix { $0.seq < dropBefore }
                    log.record.bytes -= Int64(dropped.reduce(0) { $0 + $1.bytes.count })
                    log.entries.removeFirst(dropped.count)
                    log.record.firstSeq = max(log.record.firstSeq, dropBefore)
                }
                if let end = write.end, log.record.isLive {
                    log.record.status = end.status
                    log.record.endedMilliseconds = end.milliseconds
                }
                state.logs[write.logID] = log
            }
        }
    }

    public var isShared: Bool { false }

    public func findLogIfOpen(route: String, issuer: String, subject: String, secretHash: [UInt8], key: [UInt8])
        throws -> RunLogRecord?
    {
        try self.findLog(route: route, issuer: issuer, subject: subject, secretHash: secretHash, key: key)
    }

    public func findLog(route: String, issuer: String, subject: String, secretHash: [UInt8], key: [UInt8]) throws
        -> RunLogRecord?
    {
        let name = LogName(route: route, owner: RunLogOwner(issuer: issuer, subject: subject), secretHash: secretHash,
                           key: key)
        return self.state.withLock { state in
            state.byName[name].flatMap { state.logs[$0]?.record }
        }
    }

    public func log(id: Int64) throws -> RunLogRecord? {
        self.state.withLock { $0.logs[id]?.record }
    }

    public func logs(ids: [Int64]) throws -> [Int64: RunLogRecord] {
        try self.checkFailure()
        return self.state.withLock { state in
            var records: [Int64: RunLogRecord] = [:]
            for id in ids { records[id] = state.logs[id]?.record }
            return records
        }
    }

    public func readEntries(logID: Int64, from: UInt64, limit: Int, maxBytes: Int) throws -> [RunLogEntry] {
        self.state.withLock { state in
            guard let log = state.logs[logID] else { return [] }
            var result: [RunLogEntry] = []
            var bytes = 0
            for entry in log.entries where entry.seq >= from {
                if result.count >= limit || (!result.isEmpty && bytes + entry.bytes.count > maxBytes) { break }
                result.append(entry)
                bytes += entry.bytes.count
            }
            return result
        }
    }

    public func listLogs(issuer: String, subject: String, route: String?, limit: Int) throws -> [RunLogRecord] {
        self.state.withLock { state in
            Array(state.logs.values.map(\.record)
                .filter { $0.ownerIssuer == issuer && $0.ownerSubject == subject && (route == nil || $0.route == route) }
                .sorted { $0.id > $1.id }
                .prefix(limit))
        }
    }

    public func newestLog(issuer: String, subject: String, key: [UInt8]) throws -> RunLogRecord? {
        self.state.withLock { state in
            state.logs.values.map(\.record)
                .filter { $0.ownerIssuer == issuer && $0.ownerSubject == subject && $0.key == key }
                .max { $0.id < $1.id }
        }
    }

    public func logs(createdAfter afterID: Int64, limit: Int) throws -> [RunLogRecord] {
        try self.checkFailure()
        return self.state.withLock { state in
            // Ids only grow: walk them from afterID rather than sorting every log (this store is never shared, so
            // the service asks only once, at start).
            var records: [RunLogRecord] = []
            var id = afterID + 1
            while id < state.nextID, records.count < limit {
                if let log = state.logs[id] { records.append(log.record) }
                id += 1
            }
            return records
        }
    }

    public func liveLogs(writer incarnation: String, excluding: Bool) throws -> [RunLogRecord] {
        self.state.withLock { state in
            state.logs.values.map(\.record).filter { $0.isLive && (($0.writer == incarnation) != excluding) }
        }
    }

    public func addSignal(logID: Int64, data: [UInt8]) throws {
        try self.checkFailure()
        self.state.withLock { $0.signals.append(RunLogSignal(logID: logID, data: data)) }
    }

    public func takeSignals(logIDs: [Int64]) throws -> [RunLogSignal] {
        let wanted = Set(logIDs)
        return self.state.withLock { state in
            let taken = state.signals.filter { wanted.contains($0.logID) }
            state.signals.removeAll { wanted.contains($0.logID) }
            return taken
        }
    }

    public func prune(_ policy: RunLogRetention, nowMilliseconds: Int64) throws -> [PrunedLog] {
        self.state.withLock { state in
            let ended = state.logs.values.map(\.record).filter { !$0.isLive }
                .sorted { ($0.endedMilliseconds, $0.id) > ($1.endedMilliseconds, $1.id) }
            let cutoff = nowMilliseconds - policy.maxEndedAgeSeconds * 1000
            // The same order of rules as the SQLite store: age, then per owner, then the whole store.
            var owners: [RunLogOwner: (count: Int, bytes: Int64)] = [:]
            let kept = ended.filter { record in
                guard record.endedMilliseconds >= cutoff else { return false }
                let owner = RunLogOwner(issuer: record.ownerIssuer, subject: record.ownerSubject)
                var used = owners[owner, default: (0, 0)]
                used.count += 1
                used.bytes += record.bytes
                owners[owner] = used
                return used.count <= policy.maxEndedLogsPerOwner && used.bytes <= Int64(policy.maxEndedBytesPerOwner)
            }
            var running: Int64 = 0
            let survivors = Set(kept.enumerated().prefix { offset, record in
                running += record.bytes
                return offset < policy.maxEndedLogs && running <= Int64(policy.maxTotalBytes)
            }.map(\.element.id))
            let doomed = ended.filter { !survivors.contains($0.id) }
            for record in doomed {
                state.logs[record.id] = nil
                state.byName[LogName(record)] = nil
            }
            if !doomed.isEmpty {
                let gone = Set(doomed.map(\.id))
                state.signals.removeAll { gone.contains($0.logID) }
            }
            return doomed.map { PrunedLog(id: $0.id, name: LogName($0)) }
        }
    }
}
