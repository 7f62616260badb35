import AgentHostWorkers
import Foundation
import Testing

@Suite("Merged admin answers")
struct ClusterAdminMergeTests {
    @Test func metricsAreLabelledByWorkerAndGroupedByFamily() {
        let one = """
            # TYPE agenthost_refusals_total counter
            agenthost_refusals_total{reason="origin"} 2
            # TYPE open gauge
            open 3
            """
        let two = """
            # TYPE agenthost_refusals_total counter
            agenthost_refusals_total{reason="origin"} 5
            # TYPE open gauge
            open 1
            """
        let merged = ClusterAdminMerge.metrics([
            .init(worker: 0, body: one, error: nil), .init(worker: 1, body: two, error: nil),
            .init(worker: 2, body: nil, error: "no answer"),
        ])
        #expect(merged == """
            # HELP agenthost_worker_up Whether the worker answered this scrape.
            # TYPE agenthost_worker_up gauge
            agenthost_worker_up{worker="0"} 1
            agenthost_worker_up{worker="1"} 1
            agenthost_worker_up{worker="2"} 0
            # TYPE agenthost_refusals_total counter
            agenthost_refusals_total{worker="0",reason="origin"} 2
            agenthost_refusals_total{worker="1",reason="origin"} 5
            # TYPE open gauge
            open{worker="0"} 3
            open{worker="1"} 1

            """)
    }

    @Test func pluginsListEveryWorkersGenerationsAndWhoDidNotAnswer() throws {
        let merged = ClusterAdminMerge.plugins([
            .init(worker: 0, body: #"{"host":{"abi":"1.2"},"plugins":[{"name":"echo","generation":1}]}"#, error: nil),
            .init(worker: 1, body: nil, error: "no answer within 2 s"),
        ])
        #expect(merged.contains(#""host":{"abi":"1.2"}"#))  // the same binary in every worker: shown once
        let object = try #require(try JSONSerialization.jsonObject(with: Data(merged.utf8)) as? [String: Any])
        let plugins = try #require(object["plugins"] as? [[String: Any]])
        #expect(plugins.count == 1)
        #expect(plugins[0]["worker"] as? Int == 0)
        #expect(plugins[0]["name"] as? String == "echo")
        let workers = try #require(object["workers"] as? [[String: Any]])
        #expect(workers[1]["error"] as? String == "no answer within 2 s")
    }

    @Test func healthJoinsTheSupervisorsTableAndIsDegradedWhenAWorkerIsSilent() throws {
        let table = #"[{"worker":0,"pid":10,"state":"serving","restarts":0},{"worker":1,"state":"restarting","restarts":3,"last_exit":"killed by SIGSEGV"}]"#
        let merged = ClusterAdminMerge.health([
            .init(worker: 0, body: #"{"status":"ok","pid":10,"open_websockets":4}"#, error: nil),
            .init(worker: 1, body: nil, error: "cannot connect"),
        ], supervisorTable: table)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(merged.utf8)) as? [String: Any])
        #expect(object["status"] as? String == "degraded")
        let rows = try #require(object["workers"] as? [[String: Any]])
        #expect(rows[0]["open_websockets"] as? Int == 4)
        #expect(rows[1]["restarts"] as? Int == 3)
        #expect(rows[1]["error"] as? String == "cannot connect")
    }
}
