import Synchronization

/// Every run of one plugin instance, by run id: runs belong to the instance, not to a socket, so a client on a
/// new socket can find its run again (`resume`).
final class RunRegistry: Sendable {
    private let runs = Mutex<[String: RunRecord]>([:])
    private let maxRuns: Int

    init(maxRuns: Int) { self.maxRuns = maxRuns }

    enum InsertError: Error {
        case exists
        case full
    }

    /// Adds a new run. A finished run with the same id (kept for resume) is replaced; a live one is not.
    func insert(_ record: RunRecord) throws(InsertError) {
        try self.runs.withLock { runs throws(InsertError) in
            if let existing = runs[record.id], !existing.isFinished { throw .exists }
            if runs[record.id] == nil, runs.count >= self.maxRuns { throw .full }
            runs[record.id] = record
        }
    }

    func lookup(_ id: String) -> RunRecord? { self.runs.withLock { $0[id] } }

    /// Forgets `record` after `milliseconds`, unless its id was reused meanwhile.
    func removeLater(_ record: RunRecord, afterMilliseconds milliseconds: Int) {
        Task {
            try? await Task.sleep(for: .milliseconds(milliseconds))
            self.runs.withLock { runs in
                if runs[record.id] === record { runs[record.id] = nil }
            }
        }
    }

    /// The instance is going away (plugin replaced or removed): end every live run.
    func cancelAll(reason: String) {
        for record in self.runs.withLock({ Array($0.values) }) {
            record.finish(.cancelled, reason: reason)
        }
    }

    var count: Int { self.runs.withLock { $0.count } }
}
