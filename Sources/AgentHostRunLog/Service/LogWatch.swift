import AgentHostCore
import NIOCore
import NIOPosix

/// One log_watch: delivers a log's entries after a seq to one connection, in order, each once, then one LOG_END.
///
/// Entries come from the store first (read on the service's thread pool) and then from the log's in-memory tail;
/// the watch only ever asks for `nextSeq`, so the boundary between the two can neither skip nor repeat an entry.
/// Delivery stops while the connection's outbound queue is above its high-water mark and goes on when it is
/// writable. A log another process writes is read from the store when the service's poll of that log (one per log,
/// whatever the number of watchers) finds new entries.
final class LogWatch: @unchecked Sendable {
    // @unchecked: `waiting` and `cancelled` are guarded by the service's lock; the rest is touched only on the
    // target's event loop.
    let id: UInt64
    let handle: UInt64
    let log: LiveLog
    let target: any RunLogWatchTarget
    let context: UInt
    unowned let service: RunLogService

    /// Guarded by the service lock: the watch found nothing new and wants a pump at the next append or end.
    var waiting = false
    /// Guarded by the service lock.
    var cancelled = false

    // Loop-bound.
    var nextSeq: UInt64
    private var lastDelivered: UInt64 = 0
    private var pending = CircularBuffer<RunLogEntry>()
    private var busy = false
    private var awaitingWritable = false
    private var finished = false

    static let batchEntries = 256
    /// Entries taken from memory at a time (they are shared with the log's tail: no copy).
    static let batchBytes = 1 << 20
    /// Entry bytes read from the store at a time: what a watch holds while its client does not read. A socket's
    /// watches read only while its outbound queue is below the high-water mark, but each may hold one batch (a
    /// client resuming many runs at once); 1 MiB let one non-reading socket with 200 resumes hold 200 MiB.
    static let storeBatchBytes = 128 << 10
    /// Rounds of delivery per pump before yielding the loop to other connections.
    private static let roundsPerPump = 4

    init(id: UInt64, handle: UInt64, log: LiveLog, target: any RunLogWatchTarget, context: UInt, afterSeq: UInt64,
         service: RunLogService) {
        self.id = id
        self.handle = handle
        self.log = log
        self.target = target
        self.context = context
        self.nextSeq = afterSeq &+ 1
        self.service = service
    }

    /// Schedules a pump on the target's loop.
    func schedulePump() {
        self.target.eventLoop.execute { self.pump() }
    }

    /// On the loop: delivers what is available, as far as the outbound queue allows.
    func pump() {
        guard !self.finished, !self.busy, !self.awaitingWritable else { return }
        for _ in 0 ..< Self.roundsPerPump {
            if self.pending.isEmpty {
                switch self.service.nextStep(for: self) {
                case .cancelled:
                    self.finish(status: "", cancelled: true)
                    return
                case .entries(let entries):
                    self.pending.append(contentsOf: entries)
                case .end(let status):
                    self.finish(status: status, cancelled: false)
                    return
                case .wait:
                    return
                case .read(let storeID, let remote):
                    // Nothing is read for a connection that is not taking what it has.
                    guard !self.target.isBlocked else {
                        self.awaitWritable()
                        return
                    }
                    self.read(storeID: storeID, remote: remote)
                    return
                }
            }
            switch self.target.deliver({ self.nextEvent() }) {
            case .drained:
                continue
            case .blocked:
                self.awaitWritable()
                return
            case .closed:
                // The connection is closing: the service cancels its watches when the session closes.
                return
            }
        }
        self.schedulePump()
    }

    private func awaitWritable() {
        self.awaitingWritable = true
        self.target.whenWritable {
            self.awaitingWritable = false
            self.pump()
        }
    }

    private func nextEvent() -> DeferredEvent? {
        guard let entry = self.pending.popFirst() else { return nil }
        self.nextSeq = entry.seq + 1
        self.lastDelivered = entry.seq
        return DeferredEvent(kind: .logEntry, id: self.id, context: self.context, cancelled: false, logSeq: entry.seq,
                             logBytes: entry.bytes)
    }

    /// Reads entries at `nextSeq` from the store, off the loop.
    private func read(storeID: Int64, remote: Bool) {
        self.busy = true
        let from = self.nextSeq
        let backend = self.service.backend
        self.service.threadPool.runIfActive(eventLoop: self.target.eventLoop) { () throws -> ([RunLogEntry], RunLogRecord?) in
            let entries = try backend.readEntries(logID: storeID, from: from, limit: Self.batchEntries,
                                                  maxBytes: Self.storeBatchBytes)
            return (entries, remote ? try backend.log(id: storeID) : nil)
        }.whenComplete { result in
            self.busy = false
            guard !self.finished else { return }
            switch result {
            case .success(let (entries, record)):
                self.pending.append(contentsOf: entries.filter { $0.seq >= self.nextSeq })
                if remote {
                    guard let record else {
                        // Pruned while watched: nothing more will come.
                        self.finish(status: "", cancelled: false)
                        return
                    }
                    self.service.refresh(self.log, from: record)
                    if self.pending.isEmpty {
                        if !record.isLive && self.nextSeq > record.lastSeq {
                            self.finish(status: record.status, cancelled: false)
                        } else if self.nextSeq > record.lastSeq {
                            self.pump()  // nothing new after all: waits for the next poll to find some
                        } else {
                            // The store says there is more but gave none: ask again later, not in a spin.
                            self.pumpLater(self.service.configuration.pollInterval)
                        }
                        return
                    }
                } else if self.pending.isEmpty {
                    // The store has none of them (dropped while it was failing): go on from memory.
                    self.service.skipToTail(self)
                }
                self.pump()
            case .failure(let error):
                self.service.readFailed(error)
                self.pumpLater(.milliseconds(250))
            }
        }
    }

    private func pumpLater(_ delay: TimeAmount) {
        self.busy = true
        self.target.eventLoop.scheduleTask(in: delay) {
            self.busy = false
            self.pump()
        }
    }

    /// On the loop: the watch is over (the log ended and everything was delivered, or it was cancelled).
    func finish(status: String, cancelled: Bool) {
        guard !self.finished else { return }
        self.finished = true
        self.pending.removeAll()
        self.service.watchFinished(self)
        self.target.deliverLast(DeferredEvent(kind: .logEnd, id: self.id, context: self.context, cancelled: cancelled,
                                              logSeq: self.lastDelivered, logBytes: Array(status.utf8)))
    }

    /// Cancels from any thread: LOG_END (cancelled) follows on the loop.
    func cancelOnLoop() {
        self.target.eventLoop.execute { self.finish(status: "", cancelled: true) }
    }
}

/// What a watch does next, decided under the service's lock.
enum WatchStep {
    case cancelled
    case entries([RunLogEntry])
    case end(String)
    case wait
    case read(storeID: Int64, remote: Bool)
}
