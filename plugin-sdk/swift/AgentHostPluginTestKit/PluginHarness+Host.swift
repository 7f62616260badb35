import CAgentHostPlugin
import Synchronization

/// The host side of the harness: what the C table's functions do (any thread may call them).
extension PluginHarness {
    func pluginSent(_ message: TestMessage, on conn: agenthost_conn_t) -> agenthost_status_t {
        let (status, waiters) = self.state.withLock { state -> (agenthost_status_t, [CheckedContinuation<Void, Never>]) in
            guard let connection = state.connections[conn], connection.open, connection.closedByPlugin == nil else {
                return (HarnessHostTable.closed, [])
            }
            state.connections[conn]?.received.append(message)
            let status = connection.backpressure
                ? agenthost_status_t(AGENTHOST_BACKPRESSURE) : HarnessHostTable.ok
            return (status, state.takeWaiters())
        }
        for waiter in waiters { waiter.resume() }
        return status
    }

    func pluginClosed(_ conn: agenthost_conn_t, code: UInt16, reason: String) -> agenthost_status_t {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>]? in
            guard let connection = state.connections[conn], connection.open, connection.closedByPlugin == nil else {
                return nil
            }
            state.connections[conn]?.closedByPlugin = (code, reason)
            state.connections[conn]?.paused = false  // a close resumes reading, as in the host
            return state.takeWaiters()
        }
        guard let waiters else { return HarnessHostTable.closed }
        for waiter in waiters { waiter.resume() }
        return HarnessHostTable.ok
    }

    /// Queues a post or timer; nil when its connection is closed (or the instance is being dropped).
    func schedule(conn: agenthost_conn_t, kind: Int, id: UInt64, data: UnsafeMutableRawPointer?, after delay: UInt64)
        -> Bool?
    {
        let data = UInt(bitPattern: data)
        return self.state.withLock { state -> Bool? in
            if conn == 0 {
                guard !state.dropping else { return nil }
            } else {
                guard let connection = state.connections[conn], connection.open, connection.closedByPlugin == nil else {
                    return nil
                }
            }
            state.schedule(conn: conn, kind: kind, id: id, data: data, after: delay)
            return true
        }
    }

    func cancel(timer id: UInt64, conn: agenthost_conn_t) -> agenthost_status_t {
        self.state.withLock { state in
            guard let index = state.pending.firstIndex(where: {
                $0.id == id && $0.conn == conn && $0.kind == agenthost_event_kind_t(AGENTHOST_EVENT_TIMER) && !$0.cancelled
            }) else { return HarnessHostTable.closed }
            state.pending[index].cancelled = true
            return HarnessHostTable.ok
        }
    }

    func retain(_ conn: agenthost_conn_t, by change: Int) -> agenthost_status_t {
        let status = self.state.withLock { state -> agenthost_status_t in
            guard let connection = state.connections[conn] else { return HarnessHostTable.closed }
            if change > 0 && !connection.open { return HarnessHostTable.closed }
            if change < 0 && connection.retains == 0 { return HarnessHostTable.badArgument }
            state.connections[conn]?.retains += change
            return HarnessHostTable.ok
        }
        if change < 0, self.state.withLock({ $0.connections[conn].map { !$0.open && $0.retains == 0 } ?? false }) {
            self.forget(conn)
        }
        return status
    }

    /// Held messages are replayed by the next `runPending()`, after the callback that resumed.
    func setPaused(_ conn: agenthost_conn_t, _ paused: Bool) -> agenthost_status_t {
        self.state.withLock { state in
            guard let connection = state.connections[conn], connection.open, connection.closedByPlugin == nil else {
                return HarnessHostTable.closed
            }
            state.connections[conn]?.paused = paused
            return HarnessHostTable.ok
        }
    }

    func defineMetric(_ definition: agenthost_metric_def_v1, into metric: UnsafeMutablePointer<agenthost_metric_t>)
        -> agenthost_status_t
    {
        guard Int(definition.struct_size) >= MemoryLayout<agenthost_metric_def_v1>.size, let name = definition.name,
            (1...3).contains(definition.kind), (0...8).contains(definition.label_count),
            definition.label_count == 0 || definition.label_names != nil
        else { return HarnessHostTable.badArgument }
        let labels = (0..<definition.label_count).compactMap { definition.label_names[$0].map { String(cString: $0) } }
        guard labels.count == definition.label_count else { return HarnessHostTable.badArgument }
        let handle = HarnessHostTable.nextHandle()
        let text = String(cString: name)
        let status = self.state.withLock { state -> agenthost_status_t in
            if let existing = state.metrics.values.first(where: { $0.name == text }),
                existing.kind != definition.kind || existing.labelNames != labels
            {
                return agenthost_status_t(AGENTHOST_EXISTS)
            }
            state.metrics[handle] = HarnessState.Metric(kind: definition.kind, name: text, labelNames: labels)
            return HarnessHostTable.ok
        }
        guard status == HarnessHostTable.ok else { return status }
        HarnessHostTable.registry.withLock { $0.metrics[handle] = self }
        metric.pointee = handle
        return status
    }

    func updateMetric(_ metric: UInt64, labels: [String], _ update: MetricUpdate, _ value: Double)
        -> agenthost_status_t
    {
        self.state.withLock { state in
            guard let entry = state.metrics[metric], entry.labelNames.count == labels.count, value.isFinite else {
                return HarnessHostTable.badArgument
            }
            switch (update, entry.kind) {
            case (.add, agenthost_metric_kind_t(AGENTHOST_METRIC_COUNTER)) where value >= 0,
                (.add, agenthost_metric_kind_t(AGENTHOST_METRIC_GAUGE)):
                state.metrics[metric]!.values[labels, default: 0] += value
            case (.set, agenthost_metric_kind_t(AGENTHOST_METRIC_GAUGE)):
                state.metrics[metric]!.values[labels] = value
            case (.observe, agenthost_metric_kind_t(AGENTHOST_METRIC_HISTOGRAM)):
                state.metrics[metric]!.values[labels, default: 0] += value
                state.metrics[metric]!.observations[labels, default: []].append(value)
            default:
                return HarnessHostTable.badArgument
            }
            return HarnessHostTable.ok
        }
    }
}

enum MetricUpdate {
    case add, set, observe
}
