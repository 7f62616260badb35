import Metrics
import Logging
import Synchronization

/// Whether the store works, so a failure is logged once per streak (not once per batch or frame) and its end is
/// said too. Every failure is counted. Only a committed batch of entries ends a streak: a store that still takes
/// small writes but not batches (a disk nearly full) must not flap between the two lines.
final class StoreHealth: Sendable {
    private let logger: Logger
    private let metrics: RunLogMetrics
    private let failing = Mutex(false)

    init(logger: Logger, metrics: RunLogMetrics) {
        self.logger = logger
        self.metrics = metrics
    }

    var isFailing: Bool { self.failing.withLock { $0 } }

    func failed(_ error: any Error) {
        self.metrics.storeErrors.increment()
        let first = self.failing.withLock { failing in
            defer { failing = true }
            return !failing
        }
        if first {
            self.logger.error("the run log store failed; live runs go on in memory and are stored when it works again",
                              metadata: ["error": "\(error)"])
        }
    }

    func succeeded() {
        let recovered = self.failing.withLock { failing in
            defer { failing = false }
            return failing
        }
        if recovered { self.logger.notice("the run log store works again") }
    }
}
