import Metrics

/// The run log's metrics (swift-metrics; exported by the server's Prometheus endpoint).
struct RunLogMetrics: Sendable {
    let storeErrors = Counter(label: "agenthost_runlog_store_errors_total")
    let entriesWritten = Counter(label: "agenthost_runlog_entries_written_total")
    let bytesWritten = Counter(label: "agenthost_runlog_bytes_written_total")
    let batchEntries = Recorder(label: "agenthost_runlog_batch_entries")
    let droppedEntries = Counter(label: "agenthost_runlog_dropped_entries_total")
    let liveLogs = Meter(label: "agenthost_runlog_live_logs")
}
