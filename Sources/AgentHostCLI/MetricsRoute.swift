import AgentHostCore
import Prometheus

/// `GET /metrics`: everything recorded through swift-metrics, in the Prometheus text format (admin only).
struct MetricsRoute: AdminRoute {
    let registry: PrometheusCollectorRegistry

    var contentType: String { "text/plain; version=0.0.4" }

    func respond() async -> String {
        self.registry.emitToString()
    }
}
