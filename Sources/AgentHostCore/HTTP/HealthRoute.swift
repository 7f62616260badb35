import Glibc

/// `GET /health` (admin): this process's pid and open WebSockets, as JSON. With `--workers N` every worker answers
/// it for itself and `/health` merges them (`ClusterAdmin`); `/healthz` stays the public yes/no probe.
public struct HealthRoute: AdminRoute {
    private let connections: OpenConnections
    private let started = CoarseClock.nanoseconds()

    public init(connections: OpenConnections) {
        self.connections = connections
    }

    public func respond() async -> String {
        let uptime = (CoarseClock.nanoseconds() &- self.started) / 1_000_000_000
        return #"{"status":"ok","pid":\#(getpid()),"open_websockets":\#(self.connections.count),"uptime_seconds":\#(uptime)}"#
    }
}
