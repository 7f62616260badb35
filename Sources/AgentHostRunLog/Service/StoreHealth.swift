import Metrics
import Logging
import Synchronization

/// Whether the store works, so a failure is logged once per streak (not once per batch or frame) and its end is
/// said too. Every failure is counted. Only a committed batch of entries ends a streak: a store that still takes
/// small writes but not batches (a disk nearly full) must not flap between the two lines.
final class StoreHealth: Sendable {
    private struct State {
        /// In a failure streak (logged once).
        var failing = false
        /// A write (not only a read) failed and no insert has worked since: what a log_open miss must not take as
        /// "no such run".
        var writesFailing = false
    }

    private let logger: Logger
    private let metrics: RunLogMetrics
    private let state = Mutex(State())

    init(logger: Logger, metrics: RunLogMetrics) {
        self.logger = logger
        self.metrics = metrics
    }

    var isFailing: Bool { self.state.withLock { $0.failing } }
    var writesAreFailing: Bool { self.state.withLock { $0.writesFailing } }

    /// `write`: false for a failed read (an index refresh, a watch's read), which does not mean the store lost
    /// anything written.
    func failed(_ error: any Error, write: Bool = true) {
        self.metrics.storeErrors.increment()
        let first = self.state.withLock { state in
            defer {
                state.failing = true
                if write { state.writesFailing = true }
            }
            return !state.failing
        }
        if first {
            self.logger.error("the run log store failed; live runs go on in memory and are stored when it works again",
                              metadata: ["error": "\(error)"])
        }
    }

    /// New logs were inserted: a log_open miss is an answer again (what it asks is whether the log's row exists).
    /// The logged streak goes on until entries are stored (see above).
    func insertsSucceeded() {
        self.state.withLock { $0.writesFailing = false }
    }

    func succeeded() {
        let recovered = self.state.withLock { state in
            defer { state = State() }
            return state.failing
        }
        if recovered { self.logger.notice("the run log store works again") }
    }
}
