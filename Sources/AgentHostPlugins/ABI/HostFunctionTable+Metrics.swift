import AgentHostCore
import CAgentHostPlugin
import Logging
import Glibc

// The ABI 1.2 metric entries of the host function table (see `PluginMetrics`). Internal, not private:
// `HostFunctionTable.table` points at them.


func hostMetricDefine(_ ctx: OpaquePointer?, _ definition: UnsafePointer<agenthost_metric_def_v1>?,
                              _ metric: UnsafeMutablePointer<agenthost_metric_t>?) -> agenthost_status_t {
    guard let ctx, let definition, let metric else { return HostFunctionTable.badArgument }
    let instance = PluginInstanceContext.from(ctx)
    let d = definition.pointee
    // Fields are read only as far as the caller's struct_size reaches (all of them are 1.2's).
    guard Int(d.struct_size) >= MemoryLayout<agenthost_metric_def_v1>.size, let name = d.name else {
        instance.callRefused("metric_define", conn: 0, reason: "a definition without a name, or shorter than 1.2's")
        return HostFunctionTable.badArgument
    }
    let kind: PluginMetrics.Kind
    switch d.kind {
    case agenthost_metric_kind_t(AGENTHOST_METRIC_COUNTER): kind = .counter
    case agenthost_metric_kind_t(AGENTHOST_METRIC_GAUGE): kind = .gauge
    case agenthost_metric_kind_t(AGENTHOST_METRIC_HISTOGRAM): kind = .histogram
    default:
        instance.callRefused("metric_define", conn: 0, reason: "unknown metric kind \(d.kind)")
        return HostFunctionTable.badArgument
    }
    guard (0...PluginMetrics.maxLabels).contains(d.label_count), d.label_count == 0 || d.label_names != nil,
        (0...64).contains(d.bucket_count), d.bucket_count == 0 || d.buckets != nil
    else {
        instance.callRefused("metric_define", conn: 0, reason: "label or bucket counts without arrays, or too many")
        return HostFunctionTable.badArgument
    }
    var labels: [String] = []
    for index in 0..<d.label_count {
        guard let label = d.label_names[index] else {
            instance.callRefused("metric_define", conn: 0, reason: "label name #\(index) is NULL")
            return HostFunctionTable.badArgument
        }
        labels.append(String(cString: label))
    }
    let buckets = d.buckets.map { Array(UnsafeBufferPointer(start: $0, count: d.bucket_count)) }
    let help = d.help.map { String(cString: $0) } ?? ""
    switch HostFunctionTable.metrics.define(plugin: instance.name, kind: kind, name: String(cString: name), help: help,
                                            labelNames: labels, buckets: buckets?.isEmpty == true ? nil : buckets) {
    case .success(let handle):
        metric.pointee = handle
        return HostFunctionTable.ok
    case .failure(.exists(let reason)):
        instance.logger.error("metric refused", metadata: ["reason": "\(reason)"])
        return agenthost_status_t(AGENTHOST_EXISTS)
    case .failure(.badArgument(let reason)):
        instance.callRefused("metric_define", conn: 0, reason: reason)
        return HostFunctionTable.badArgument
    }
}

func metricUpdate(_ metric: agenthost_metric_t, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                          _ update: PluginMetrics.Update, _ value: Double) -> agenthost_status_t {
    guard count == 0 || values != nil, (0...PluginMetrics.maxLabels).contains(count) else {
        HostFunctionTable.metrics.refused(metric, reason: "\(count) label values, or values NULL with a count")
        return HostFunctionTable.badArgument
    }
    var labelValues: [String] = []
    labelValues.reserveCapacity(count)
    for index in 0..<count {
        guard let value = values?[index] else {
            HostFunctionTable.metrics.refused(metric, reason: "label value #\(index) is NULL")
            return HostFunctionTable.badArgument
        }
        let bytes = UnsafeRawBufferPointer(start: value, count: strlen(value))
        guard UTF8Validator.isValid(bytes) else {
            HostFunctionTable.metrics.refused(metric, reason: "label value #\(index) is not UTF-8")
            return HostFunctionTable.badArgument
        }
        labelValues.append(String(decoding: bytes, as: UTF8.self))
    }
    return HostFunctionTable.metrics.update(metric, labelValues: labelValues, update, value: value) == nil
        ? HostFunctionTable.ok : HostFunctionTable.badArgument
}

func hostMetricAdd(_ metric: agenthost_metric_t, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                           _ value: Double) -> agenthost_status_t {
    metricUpdate(metric, values, count, .add, value)
}

func hostMetricSet(_ metric: agenthost_metric_t, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                           _ value: Double) -> agenthost_status_t {
    metricUpdate(metric, values, count, .set, value)
}

func hostMetricObserve(_ metric: agenthost_metric_t, _ values: UnsafePointer<UnsafePointer<CChar>?>?,
                               _ count: Int, _ value: Double) -> agenthost_status_t {
    metricUpdate(metric, values, count, .observe, value)
}
