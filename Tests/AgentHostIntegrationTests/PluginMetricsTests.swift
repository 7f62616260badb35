import AgentHostPlugins
import Logging
import Prometheus
import Testing

/// Plugin-defined metrics: every rule a plugin can break is a refusal, never one of swift-prometheus's fatal errors.
@Suite("Plugin metrics")
struct PluginMetricsTests {
    let registry = PrometheusCollectorRegistry()
    var metrics: PluginMetrics { PluginMetrics(registry: self.registry, logger: Logger(label: "test")) }

    func handle(_ result: Result<UInt64, PluginMetrics.Failure>) throws -> UInt64 {
        try result.get()
    }

    @Test func exportsEachPluginsSeriesWithItsNameAsALabel() throws {
        let metrics = self.metrics
        let chat = try self.handle(metrics.define(plugin: "chat", kind: .counter, name: "demo_messages_total",
                                                  help: "Messages", labelNames: ["room"], buckets: nil))
        let other = try self.handle(metrics.define(plugin: "other", kind: .counter, name: "demo_messages_total",
                                                   help: "Messages", labelNames: ["room"], buckets: nil))
        #expect(metrics.update(chat, labelValues: ["blue \"quoted\""], .add, value: 2) == nil)
        #expect(metrics.update(other, labelValues: ["red"], .add, value: 1) == nil)
        let text = self.registry.emitToString()
        #expect(text.contains(#"agenthost_plugin_demo_messages_total{plugin="chat",room="blue \"quoted\""} 2"#), "\(text)")
        #expect(text.contains(#"agenthost_plugin_demo_messages_total{plugin="other",room="red"} 1"#))
        #expect(text.contains("# HELP agenthost_plugin_demo_messages_total Messages"))
    }

    /// A plugin's next generation defining the same metric continues its series (a reload does not reset it).
    @Test func theSameDefinitionAgainGetsTheSameSeries() throws {
        let metrics = self.metrics
        let first = try self.handle(metrics.define(plugin: "p", kind: .gauge, name: "g", help: "", labelNames: [],
                                                   buckets: nil))
        #expect(metrics.update(first, labelValues: [], .set, value: 5) == nil)
        let again = try self.handle(metrics.define(plugin: "p", kind: .gauge, name: "g", help: "", labelNames: [],
                                                   buckets: nil))
        #expect(metrics.update(again, labelValues: [], .add, value: 1) == nil)
        #expect(self.registry.emitToString().contains(#"agenthost_plugin_g{plugin="p"} 6"#))
    }

    @Test func aDifferentDefinitionOfATakenNameIsRefusedNotFatal() throws {
        let metrics = self.metrics
        _ = try self.handle(metrics.define(plugin: "a", kind: .counter, name: "x_total", help: "one",
                                           labelNames: ["k"], buckets: nil))
        for (kind, help, labels) in [(PluginMetrics.Kind.gauge, "one", ["k"]), (.counter, "two", ["k"]),
                                     (.counter, "one", ["j"]), (.counter, "one", [])] {
            guard case .failure(.exists(let reason)) = metrics.define(plugin: "b", kind: kind, name: "x_total",
                                                                       help: help, labelNames: labels, buckets: nil)
            else {
                Issue.record("\(kind) \(help) \(labels) was accepted")
                continue
            }
            #expect(reason.contains("by plugin 'a'"))
        }
    }

    @Test(arguments: [
        ("9starts_with_digit", [String](), [Double]?.none, PluginMetrics.Kind.counter),
        ("has-dash", [], nil, .counter),
        ("ok", ["plugin"], nil, .counter),
        ("ok", ["__reserved"], nil, .counter),
        ("ok", ["a", "a"], nil, .counter),
        ("ok", ["a", "b", "c", "d", "e", "f", "g", "h", "i"], nil, .counter),
        ("ok", [], [1, 1], .histogram),
        ("ok", [], [Double.infinity], .histogram),
        ("ok", [], [1], .counter),
    ])
    func refusesDefinitionsThatBreakARule(name: String, labels: [String], buckets: [Double]?,
                                          kind: PluginMetrics.Kind) {
        guard case .failure(.badArgument) = self.metrics.define(plugin: "p", kind: kind, name: name, help: "",
                                                                labelNames: labels, buckets: buckets)
        else {
            Issue.record("accepted \(name) \(labels) \(String(describing: buckets))")
            return
        }
    }

    /// Two families may not write the same series: Prometheus would refuse the whole scrape.
    @Test func aHistogramsSeriesNamesAndItsLeLabelAreTaken() throws {
        let metrics = self.metrics
        _ = try self.handle(metrics.define(plugin: "a", kind: .histogram, name: "latency", help: "", labelNames: [],
                                           buckets: nil))
        for name in ["latency_count", "latency_sum", "latency_bucket"] {
            guard case .failure(.exists) = metrics.define(plugin: "b", kind: .counter, name: name, help: "",
                                                          labelNames: [], buckets: nil)
            else {
                Issue.record("\(name) accepted beside histogram latency")
                continue
            }
        }
        _ = try self.handle(metrics.define(plugin: "a", kind: .counter, name: "size_count", help: "", labelNames: [],
                                           buckets: nil))
        guard case .failure(.exists) = metrics.define(plugin: "b", kind: .histogram, name: "size", help: "",
                                                      labelNames: [], buckets: nil)
        else { Issue.record("histogram size accepted beside counter size_count"); return }
        guard case .failure(.badArgument) = metrics.define(plugin: "a", kind: .histogram, name: "h", help: "",
                                                           labelNames: ["le"], buckets: nil)
        else { Issue.record("a histogram label 'le' was accepted"); return }
    }

    @Test func refusesUpdatesThatDoNotFitTheMetric() throws {
        let metrics = self.metrics
        let counter = try self.handle(metrics.define(plugin: "p", kind: .counter, name: "c_total", help: "",
                                                     labelNames: ["room"], buckets: nil))
        #expect(metrics.update(counter, labelValues: ["a"], .add, value: -1) != nil)  // counters only go up
        #expect(metrics.update(counter, labelValues: ["a"], .set, value: 1) != nil)
        #expect(metrics.update(counter, labelValues: ["a"], .add, value: .nan) != nil)
        #expect(metrics.update(counter, labelValues: [], .add, value: 1) != nil)
        #expect(metrics.update(counter, labelValues: [String(repeating: "x", count: 129)], .add, value: 1) != nil)
        #expect(metrics.update(12345, labelValues: [], .add, value: 1) != nil)
    }

    /// Unbounded label values (a user id, say) would grow the registry without end: at most 1000 sets a metric.
    @Test func capsTheLabelSetsOfAMetric() throws {
        let metrics = self.metrics
        let counter = try self.handle(metrics.define(plugin: "p", kind: .counter, name: "per_user_total", help: "",
                                                     labelNames: ["user"], buckets: nil))
        for user in 0..<1000 { #expect(metrics.update(counter, labelValues: ["\(user)"], .add, value: 1) == nil) }
        #expect(metrics.update(counter, labelValues: ["one more"], .add, value: 1) != nil)
        #expect(metrics.update(counter, labelValues: ["7"], .add, value: 1) == nil)  // existing sets still count
    }

    @Test func histogramsUseTheirBuckets() throws {
        let metrics = self.metrics
        let histogram = try self.handle(metrics.define(plugin: "p", kind: .histogram, name: "sizes", help: "",
                                                       labelNames: [], buckets: [10, 100]))
        #expect(metrics.update(histogram, labelValues: [], .observe, value: 50) == nil)
        let text = self.registry.emitToString()
        #expect(text.contains(#"agenthost_plugin_sizes_bucket{plugin="p",le="10.0"} 0"#), "\(text)")
        #expect(text.contains(#"agenthost_plugin_sizes_bucket{plugin="p",le="100.0"} 1"#))
    }
}
