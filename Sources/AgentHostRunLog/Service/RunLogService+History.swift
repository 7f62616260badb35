import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One run for the history API: the log and its entries (as far as the response budget goes).
public struct RunHistory: Sendable, Equatable {
    public var record: RunLogRecord
    public var entries: [RunLogEntry]
    /// More entries exist than the budget allowed.
    public var truncated: Bool
}

/// The history API's reads: owner only, from the store (after a write-behind cycle, so live runs are current).
extension RunLogService {
    /// The caller's run with this key: on `route`, or the newest on any route. Nil when there is none (or it is
    /// another identity's).
    public func history(owner: RunLogOwner, key: [UInt8], route: String?, maxBytes: Int) async throws -> RunHistory? {
        guard !owner.isAnonymous, (1 ... RunLogConfiguration.maxKeyBytes).contains(key.count) else { return nil }
        await self.flush()
        return try await self.threadPool.runIfActive { () throws -> RunHistory? in
            let record: RunLogRecord?
            if let route {
                record = try self.backend.findLog(route: route, issuer: owner.issuer, subject: owner.subject,
                                                  secretHash: [], key: key)
            } else {
                record = try self.backend.newestLog(issuer: owner.issuer, subject: owner.subject, key: key)
            }
            guard let record, record.ownerIssuer == owner.issuer, record.ownerSubject == owner.subject else { return nil }
            var entries: [RunLogEntry] = []
            var bytes = 0
            var from = record.firstSeq
            var truncated = false
            while from <= record.lastSeq {
                let batch = try self.backend.readEntries(logID: record.id, from: from, limit: 1024, maxBytes: 1 << 20)
                guard let last = batch.last else { break }
                for entry in batch {
                    if bytes + entry.bytes.count > maxBytes {
                        truncated = true
                        break
                    }
                    entries.append(entry)
                    bytes += entry.bytes.count
                }
                if truncated { break }
                from = last.seq + 1
            }
            return RunHistory(record: record, entries: entries, truncated: truncated)
        }
    }

    /// The caller's runs, newest first.
    public func runs(owner: RunLogOwner, route: String?, limit: Int) async throws -> [RunLogRecord] {
        guard !owner.isAnonymous else { return [] }
        await self.flush()
        return try await self.threadPool.runIfActive {
            try self.backend.listLogs(issuer: owner.issuer, subject: owner.subject, route: route, limit: limit)
        }
    }
}
