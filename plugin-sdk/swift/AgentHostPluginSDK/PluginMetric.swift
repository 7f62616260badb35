import CAgentHostPlugin

/// (1.2) A metric the plugin defined with `PluginHost.defineMetric`, exported at the host's /metrics as
/// `agenthost_plugin_<name>{plugin="<your plugin>", <labels>}`. Updates are safe from any thread and cheap enough
/// for every message.
public struct PluginMetric: Sendable {
    public enum Kind: Sendable {
        /// Only goes up: `add` with a value >= 0.
        case counter
        /// `set`, or `add` with any value.
        case gauge
        /// `observe`; `buckets` nil for the host's default ones.
        case histogram(buckets: [Double]?)
    }

    let host: PluginHost
    let handle: agenthost_metric_t

    /// Adds `value` to the series named by `labels` (one value per label defined, in order).
    @discardableResult
    public func add(_ value: Double = 1, labels: [String] = []) -> HostStatus {
        self.update(labels) { self.host.api.pointee.metric_add(self.handle, $0, $1, value) }
    }

    /// Sets a gauge's series.
    @discardableResult
    public func set(_ value: Double, labels: [String] = []) -> HostStatus {
        self.update(labels) { self.host.api.pointee.metric_set(self.handle, $0, $1, value) }
    }

    /// Records one observation in a histogram's series.
    @discardableResult
    public func observe(_ value: Double, labels: [String] = []) -> HostStatus {
        self.update(labels) { self.host.api.pointee.metric_observe(self.handle, $0, $1, value) }
    }

    private func update(_ labels: [String],
                        _ call: (UnsafePointer<UnsafePointer<CChar>?>?, Int) -> agenthost_status_t) -> HostStatus {
        withCStrings(labels) { HostStatus(call($0, labels.count)) }
    }
}

extension PluginHost {
    /// (1.2) Defines a metric (or finds the one this plugin defined before, in an earlier generation: its series
    /// go on). Nil when the host refused it (see its log: a name or label rule, or the name defined differently)
    /// or is older than 1.2.
    public func defineMetric(_ kind: PluginMetric.Kind, name: String, help: String = "", labels: [String] = [])
        -> PluginMetric?
    {
        guard self.has(\.metric_define) else { return nil }
        var definition = agenthost_metric_def_v1()
        definition.struct_size = UInt32(MemoryLayout<agenthost_metric_def_v1>.size)
        var buckets: [Double] = []
        switch kind {
        case .counter: definition.kind = agenthost_metric_kind_t(AGENTHOST_METRIC_COUNTER)
        case .gauge: definition.kind = agenthost_metric_kind_t(AGENTHOST_METRIC_GAUGE)
        case .histogram(let bounds):
            definition.kind = agenthost_metric_kind_t(AGENTHOST_METRIC_HISTOGRAM)
            buckets = bounds ?? []
        }
        var handle: agenthost_metric_t = 0
        let status = name.withCString { name in
            help.withCString { help in
                withCStrings(labels) { labelNames in
                    buckets.withUnsafeBufferPointer { bounds in
                        definition.name = name
                        definition.help = help
                        definition.label_names = labelNames
                        definition.label_count = labels.count
                        definition.buckets = bounds.isEmpty ? nil : bounds.baseAddress
                        definition.bucket_count = bounds.count
                        return self.api.pointee.metric_define(self.context, &definition, &handle)
                    }
                }
            }
        }
        guard status == agenthost_status_t(AGENTHOST_OK) else { return nil }
        return PluginMetric(host: self, handle: handle)
    }
}

/// Calls `body` with a C array of NUL-terminated copies of `strings` (nil when empty), valid during the call.
func withCStrings<Result>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> Result) -> Result {
    guard !strings.isEmpty else { return body(nil) }
    // Allocated by hand: the SDK imports nothing but the C header (no strdup from libc).
    let copies = strings.map { string -> UnsafeMutablePointer<CChar> in
        let utf8 = Array(string.utf8CString)
        let copy = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
        copy.initialize(from: utf8, count: utf8.count)
        return copy
    }
    defer { copies.forEach { $0.deallocate() } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}
