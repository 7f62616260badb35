import AgentHostCore
import Logging
import Prometheus
import Synchronization

/// The metrics plugins define through the ABI (1.2 `metric_define`, `metric_add`, `metric_set`, `metric_observe`),
/// kept in the host's Prometheus registry and exported at `/metrics` as `agenthost_plugin_<name>{plugin="..."}`.
///
/// swift-prometheus stops the process (fatalError) when a name is registered twice with another type, help text or
/// label set. A plugin's definitions are input the host must survive, so every definition is checked here against
/// the family's first one first: a mismatch is refused with EXISTS, never passed on.
public final class PluginMetrics: Sendable {
    public enum Kind: Sendable, Equatable {
        case counter, gauge, histogram
    }

    /// What a family is; every later definition of its name must be the same.
    struct Definition: Sendable, Equatable {
        var kind: Kind
        var help: String
        var labelNames: [String]
        var buckets: [Double]
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case exists(String)
        case badArgument(String)

        public var description: String {
            switch self {
            case .exists(let reason), .badArgument(let reason): return reason
            }
        }
    }

    public enum Update: Sendable {
        case add, set, observe
    }

    enum Series: Sendable {
        case counter(Counter)
        case gauge(Gauge)
        case histogram(ValueHistogram)
    }

    /// One plugin's view of one family: its series by label values.
    final class Metric: Sendable {
        let name: String
        let plugin: String
        let definition: Definition
        let series = Mutex<[[String]: Series]>([:])
        /// Refused updates are logged at most once a minute per metric.
        let refusedLog = LogRateLimiter(interval: .seconds(60))

        init(name: String, plugin: String, definition: Definition) {
            self.name = name
            self.plugin = plugin
            self.definition = definition
        }
    }

    static let maxLabelSets = 1000
    static let maxLabels = 8
    static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    static let prefix = "agenthost_plugin_"

    private let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private struct State {
        /// By exported name: the definition and the plugin that made it first.
        var families: [String: (definition: Definition, plugin: String)] = [:]
        /// By handle, and by (plugin, name) so a plugin's next generation gets the same object.
        var metrics: [UInt64: Metric] = [:]
        var handles: [String: UInt64] = [:]
        /// Every series name in the exposition, and the family that writes it.
        var series: [String: String] = [:]
        var nextHandle: UInt64 = 1
    }
    private let state = Mutex(State())

    public init(registry: PrometheusCollectorRegistry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    /// Declares a metric for `plugin`; returns its handle.
    public func define(plugin: String, kind: Kind, name: String, help: String, labelNames: [String],
                       buckets: [Double]?) -> Result<UInt64, Failure> {
        guard Self.isName(name, maxLength: 100) else {
            return .failure(.badArgument("metric name '\(name)' must be 1-100 characters of [a-z0-9_], not starting with a digit"))
        }
        guard help.utf8.count <= 256 else { return .failure(.badArgument("help text of \(name) is over 256 bytes")) }
        guard labelNames.count <= Self.maxLabels else {
            return .failure(.badArgument("\(name) has \(labelNames.count) labels (at most \(Self.maxLabels))"))
        }
        for label in labelNames {
            guard Self.isName(label, maxLength: 64), !label.hasPrefix("__"), label != "plugin" else {
                return .failure(.badArgument("label '\(label)' of \(name) must be [a-z0-9_], not start with a digit or '__', and not be 'plugin'"))
            }
        }
        guard Set(labelNames).count == labelNames.count else {
            return .failure(.badArgument("\(name) lists a label twice"))
        }
        // A histogram's buckets carry `le`: a label of that name would be written twice on every bucket line,
        // and Prometheus refuses the whole scrape (every plugin's and the host's metrics) for it.
        guard kind != .histogram || !labelNames.contains("le") else {
            return .failure(.badArgument("\(name) is a histogram: 'le' is its buckets' label"))
        }
        var bucketList: [Double] = []
        if kind == .histogram {
            bucketList = buckets ?? Self.defaultBuckets
            guard (1...64).contains(bucketList.count), bucketList.allSatisfy(\.isFinite),
                zip(bucketList, bucketList.dropFirst()).allSatisfy({ $0 < $1 })
            else {
                return .failure(.badArgument("buckets of \(name) must be 1-64 strictly increasing finite bounds"))
            }
        } else if let buckets, !buckets.isEmpty {
            return .failure(.badArgument("\(name) is not a histogram: it takes no buckets"))
        }
        let definition = Definition(kind: kind, help: help, labelNames: labelNames, buckets: bucketList)
        let exported = Self.prefix + name
        // The series names a family writes: a histogram's three, or its own name. Two families may not share one
        // (a counter `x_count` beside a histogram `x` would make the scrape invalid).
        let series = kind == .histogram ? [exported + "_bucket", exported + "_count", exported + "_sum"] : [exported]
        return self.state.withLock { state in
            if let family = state.families[exported], family.definition != definition {
                return .failure(.exists("\(exported) is already defined differently (by plugin '\(family.plugin)'): "
                                        + "a metric keeps its kind, help, labels and buckets for the process' life"))
            }
            if let clash = series.first(where: { state.series[$0].map { $0 != exported } ?? false }) {
                return .failure(.exists("\(clash) is already written by \(state.series[clash]!) (plugin "
                                        + "'\(state.families[state.series[clash]!]?.plugin ?? "?")'); choose another name"))
            }
            for name in series { state.series[name] = exported }
            state.families[exported] = state.families[exported] ?? (definition, plugin)
            let key = plugin + "\u{0}" + name
            if let handle = state.handles[key] { return .success(handle) }
            let handle = state.nextHandle
            state.nextHandle += 1
            state.handles[key] = handle
            state.metrics[handle] = Metric(name: exported, plugin: plugin, definition: definition)
            return .success(handle)
        }
    }

    /// Updates the series of `handle` named by `labelValues`. A refusal is logged (at most once a minute per
    /// metric: a plugin may repeat it for every message).
    public func update(_ handle: UInt64, labelValues: [String], _ update: Update, value: Double) -> Failure? {
        guard let metric = self.state.withLock({ $0.metrics[handle] }) else {
            return .badArgument("unknown metric handle \(handle)")
        }
        let failure = self.apply(update, to: metric, labelValues: labelValues, value: value)
        if let failure { self.logRefusal(of: metric, failure) }
        return failure
    }

    /// An update the ABI layer refused before it could be applied (NULL or non-UTF-8 label values, a bad count):
    /// logged like the others. Nothing for an unknown handle, which names no plugin.
    public func refused(_ handle: UInt64, reason: String) {
        guard let metric = self.state.withLock({ $0.metrics[handle] }) else { return }
        self.logRefusal(of: metric, .badArgument(reason))
    }

    private func logRefusal(of metric: Metric, _ failure: Failure) {
        let (log, suppressed) = metric.refusedLog.admit()
        guard log else { return }
        self.logger.warning("plugin metric update refused", metadata: [
            "plugin": "\(metric.plugin)", "metric": "\(metric.name)", "reason": "\(failure)",
            "suppressed": "\(suppressed)",
        ])
    }

    private func apply(_ update: Update, to metric: Metric, labelValues: [String], value: Double) -> Failure? {
        let definition = metric.definition
        guard value.isFinite else { return .badArgument("\(metric.name): the value is not finite") }
        switch (update, definition.kind) {
        case (.add, .counter) where value < 0:
            return .badArgument("\(metric.name) is a counter: it cannot go down")
        case (.add, .counter), (.add, .gauge), (.set, .gauge), (.observe, .histogram):
            break
        default:
            return .badArgument("\(metric.name) is a \(definition.kind): \(update) does not apply")
        }
        guard labelValues.count == definition.labelNames.count else {
            return .badArgument("\(metric.name) has \(definition.labelNames.count) labels, \(labelValues.count) values given")
        }
        guard labelValues.allSatisfy({ $0.utf8.count <= 128 }) else {
            return .badArgument("\(metric.name): a label value is over 128 bytes")
        }
        let series = metric.series.withLock { all -> Series? in
            if let series = all[labelValues] { return series }
            guard all.count < Self.maxLabelSets else { return nil }
            let series = self.makeSeries(metric, labelValues: labelValues)
            all[labelValues] = series
            return series
        }
        guard let series else {
            return .badArgument("\(metric.name) has \(Self.maxLabelSets) label sets already: labels must take few values")
        }
        switch (series, update) {
        case (.counter(let counter), _): counter.increment(by: value)
        case (.gauge(let gauge), .set): gauge.set(to: value)
        case (.gauge(let gauge), _): gauge.increment(by: value)
        case (.histogram(let histogram), _): histogram.record(value)
        }
        return nil
    }

    private func makeSeries(_ metric: Metric, labelValues: [String]) -> Series {
        let definition = metric.definition
        let labels = [("plugin", metric.plugin)] + Array(zip(definition.labelNames, labelValues))
        let descriptor = MetricNameDescriptor(namespace: nil, subsystem: nil, metricName: metric.name, unitName: "",
                                              helpText: definition.help)
        switch definition.kind {
        case .counter: return .counter(self.registry.makeCounter(descriptor: descriptor, labels: labels))
        case .gauge: return .gauge(self.registry.makeGauge(descriptor: descriptor, labels: labels))
        case .histogram:
            return .histogram(self.registry.makeValueHistogram(descriptor: descriptor, labels: labels,
                                                               buckets: definition.buckets))
        }
    }

    private static func isName(_ name: String, maxLength: Int) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maxLength, !(48...57).contains(first) else { return false }
        return name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }
}
