import CAgentHostPlugin

/// Everything the fake host knows, under the harness's lock.
struct HarnessState {
    struct Connection {
        var route: String
        /// The plugin's conn_data, as an address (state under a lock holds no pointers).
        var connData: UInt = 0
        var open = true
        var received: [TestMessage] = []
        /// The plugin called close: (code, reason). on_close follows at the next `runPending()`.
        var closedByPlugin: (code: UInt16, reason: String)?
        var paused = false
        /// Messages the test sent while the plugin had paused reading (replayed once it resumes).
        var held: [TestMessage] = []
        /// The test set backpressure: sends answer BACKPRESSURE (queued all the same).
        var backpressure = false
        var retains = 0
    }

    /// A post or timer waiting for its time (conn 0: the instance's own).
    struct Pending {
        var due: UInt64
        var order: UInt64
        var conn: agenthost_conn_t
        var kind: agenthost_event_kind_t
        var id: UInt64
        /// The event's data pointer, as an address.
        var data: UInt
        var cancelled = false
    }

    struct Metric {
        var kind: agenthost_metric_kind_t
        var name: String
        var labelNames: [String]
        var values: [[String]: Double] = [:]
        /// Histograms: observations per label set.
        var observations: [[String]: [Double]] = [:]
    }

    var connections: [agenthost_conn_t: Connection] = [:]
    var pending: [Pending] = []
    var nextOrder: UInt64 = 1
    var nowMilliseconds: UInt64 = 0
    var logs: [(level: Int32, conn: agenthost_conn_t, message: String)] = []
    var metrics: [UInt64: Metric] = [:]
    var nextMetric: UInt64 = 1
    var dropping = false
    /// Tasks awaiting a send or close from the plugin (`TestConnection.waitForMessages`).
    var waiters: [CheckedContinuation<Void, Never>] = []

    /// Counts sends and closes: a waiter that checked at one count and suspends at another resumes at once.
    var wakeups: UInt64 = 0

    mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
        self.wakeups &+= 1
        defer { self.waiters = [] }
        return self.waiters
    }

    mutating func schedule(conn: agenthost_conn_t, kind: Int, id: UInt64, data: UInt, after delay: UInt64) {
        self.pending.append(Pending(due: self.nowMilliseconds &+ delay, order: self.nextOrder, conn: conn,
                                    kind: agenthost_event_kind_t(kind), id: id, data: data))
        self.nextOrder += 1
    }

    /// The next event due now (cancelled ones are due at once), oldest first.
    mutating func takeDue() -> Pending? {
        let due = self.pending.enumerated()
            .filter { $0.element.cancelled || $0.element.due <= self.nowMilliseconds }
            .min { ($0.element.due, $0.element.order) < ($1.element.due, $1.element.order) }
        guard let (index, event) = due else { return nil }
        self.pending.remove(at: index)
        return event
    }
}
