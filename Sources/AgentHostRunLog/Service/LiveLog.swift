import Dispatch
import NIOCore

/// One log as the service holds it in memory: a live log this process writes (its recent entries, what is
/// persisted, its watches), or a log read from the store (another process's, or an ended one) seen through a handle.
///
/// Every mutable property is guarded by the service's lock.
final class LiveLog: @unchecked Sendable {
    let name: LogName
    /// Part of the log's name (see `LogName`).
    var owner: RunLogOwner { self.name.owner }
    var secretHash: [UInt8] { self.name.secretHash }
    let createdMilliseconds: Int64
    /// This process writes the log (its entries are in `tail` until persisted); false for a log read from the store.
    let local: Bool

    enum StoreState {
        /// Not inserted in the store yet (the write-behind thread does it).
        case pending
        case stored(Int64)
        /// The store already had this name (another process created it meanwhile): never stored; the service ends
        /// it and it leaves memory once unused.
        case conflict
    }

    var store: StoreState
    var storeID: Int64? {
        if case .stored(let id) = self.store { return id }
        return nil
    }
    var isConflict: Bool {
        if case .conflict = self.store { return true }
        return false
    }

    // MARK: Writer (local logs)

    /// Orders the logs this process created (their store ids follow it: history lists and retention go by id).
    var creationOrder: UInt64 = 0
    var writerHandle: UInt64?
    var signalSink: RunLogSignalSink?
    /// Signals of one log reach its writer one at a time, in order. Made with the log (not lazily): it is reached
    /// both under the service's lock and outside it, and two racing lazy initialisations would make two queues.
    let signalQueue = DispatchQueue(label: "agenthost.runlog.signals")

    // MARK: Entries

    /// Recent entries, consecutive seqs: every unpersisted one, and stored ones up to the tail budget.
    var tail = CircularBuffer<RunLogEntry>()
    var tailBytes = 0
    var firstSeq: UInt64 = 1
    var lastSeq: UInt64 = 0
    var persistedSeq: UInt64 = 0
    /// Stored chunks (last seq, bytes), oldest first: what byte retention drops.
    var storedChunks = CircularBuffer<(last: UInt64, bytes: Int)>()
    var storedBytes = 0
    var pendingDropBefore: UInt64?
    /// Bytes of the entries after `persistedSeq`.
    var unpersistedBytes = 0

    // MARK: Status

    var status = RunLogRecord.live
    var endedMilliseconds: Int64 = 0
    var endPersisted = false
    var isLive: Bool { self.status == RunLogRecord.live }

    var watches: [UInt64: LogWatch] = [:]
    var handles = 0

    init(name: LogName, createdMilliseconds: Int64, local: Bool, store: StoreState) {
        self.name = name
        self.createdMilliseconds = createdMilliseconds
        self.local = local
        self.store = store
    }

    /// A log read from the store.
    convenience init(record: RunLogRecord) {
        self.init(name: LogName(record), createdMilliseconds: record.createdMilliseconds, local: false,
                  store: .stored(record.id))
        self.refresh(from: record)
    }

    /// A store log's latest state (another process appends and ends it).
    /// Only ever forward: readers of one store log share this object, and a record one of them read earlier than
    /// another must not take the log back (a lower last seq, an ended log live again). Returns whether it advanced.
    @discardableResult
    func refresh(from record: RunLogRecord) -> Bool {
        var advanced = false
        if record.firstSeq > self.firstSeq {
            self.firstSeq = record.firstSeq
            advanced = true
        }
        if record.lastSeq > self.lastSeq {
            self.lastSeq = record.lastSeq
            advanced = true
        }
        if self.isLive && !record.isLive {
            self.status = record.status
            self.endedMilliseconds = record.endedMilliseconds
            advanced = true
        }
        return advanced
    }

    var info: RunLogInfo {
        RunLogInfo(ended: !self.isLive, firstSeq: self.firstSeq, lastSeq: self.lastSeq,
                   createdMilliseconds: self.createdMilliseconds, endedMilliseconds: self.endedMilliseconds,
                   status: self.status)
    }

    /// The seq of the oldest entry in memory (lastSeq + 1 when none).
    var tailFirstSeq: UInt64 { self.tail.first?.seq ?? self.lastSeq + 1 }

    /// Entries from `seq` on that are in memory, at most `limit` entries / about `maxBytes`.
    func tailEntries(from seq: UInt64, limit: Int, maxBytes: Int) -> [RunLogEntry] {
        let first = self.tailFirstSeq
        guard seq >= first, seq <= self.lastSeq else { return [] }
        var index = self.tail.index(self.tail.startIndex, offsetBy: Int(seq - first))
        var result: [RunLogEntry] = []
        var bytes = 0
        while index != self.tail.endIndex, result.count < limit, result.isEmpty || bytes < maxBytes {
            let entry = self.tail[index]
            result.append(entry)
            bytes += entry.bytes.count
            index = self.tail.index(after: index)
        }
        return result
    }

    /// Drops the oldest entry in memory; returns its size.
    @discardableResult
    func dropOldestTailEntry() -> Int {
        guard let entry = self.tail.popFirst() else { return 0 }
        self.tailBytes -= entry.bytes.count
        return entry.bytes.count
    }
}

/// A log's name: its route, its owner and key. The owner is part of the name, so two identities (or two anonymous
/// secrets) using the same key on a route name two logs: nobody can take or probe another's key (a Studio client's
/// integer run ids are easy to guess).
public struct LogName: Hashable, Sendable {
    public var route: String
    public var owner: RunLogOwner
    /// The anonymous owner's secret hash; empty for an identified owner. Compared as part of the name: learning
    /// a stored hash from timing does not give the secret, and the secret is what must match.
    public var secretHash: [UInt8]
    public var key: [UInt8]

    public init(route: String, owner: RunLogOwner, secretHash: [UInt8], key: [UInt8]) {
        self.route = route
        self.owner = owner
        self.secretHash = owner.isAnonymous ? secretHash : []
        self.key = key
    }

    public init(_ record: RunLogRecord) {
        self.init(route: record.route, owner: RunLogOwner(issuer: record.ownerIssuer, subject: record.ownerSubject),
                  secretHash: record.secretHash, key: record.key)
    }

    /// The byte arrays go to the hasher at once: the synthesized conformance feeds an array a byte at a time
    /// (`Hasher.combine(UInt8)` was the largest single symbol in a profile of the write-behind thread, which
    /// hashes names under the service's lock). Every field `==` compares is hashed: anonymous clients share one
    /// owner and may all use the same run id, so the secret hash is what tells their names apart.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.route)
        hasher.combine(self.owner)
        hasher.combine(self.key.count)
        self.key.withUnsafeBytes { hasher.combine(bytes: $0) }
        hasher.combine(self.secretHash.count)
        self.secretHash.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
