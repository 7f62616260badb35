import Foundation

/// Merges the workers' own admin answers into the whole server's. Pure, so tested without processes.
public enum ClusterAdminMerge {
    public struct Answer: Sendable, Equatable {
        public var worker: Int
        /// The worker's answer; nil if it gave none.
        public var body: String?
        /// Why there is no answer.
        public var error: String?

        public init(worker: Int, body: String?, error: String?) {
            self.worker = worker
            self.body = body
            self.error = error
        }
    }

    /// `{"host": {...}, "plugins": [every worker's generations, each with "worker": n], "workers": [who answered]}`:
    /// the list keeps the single-process shape, so a client reading `plugins` reads every generation of every
    /// worker; `host` (the same binary in every worker) is the first answer's.
    public static func plugins(_ answers: [Answer]) -> String {
        var plugins: [Any] = []
        var workers: [Any] = []
        var host: Any?
        for answer in answers {
            guard let body = answer.body, let object = Self.object(body), let list = object["plugins"] as? [[String: Any]]
            else {
                workers.append(["worker": answer.worker, "error": answer.error ?? "no answer"] as [String: Any])
                continue
            }
            if host == nil { host = object["host"] }
            workers.append(["worker": answer.worker, "plugins": list.count] as [String: Any])
            for var entry in list {
                entry["worker"] = answer.worker
                plugins.append(entry)
            }
        }
        var merged: [String: Any] = ["plugins": plugins, "workers": workers]
        if let host { merged["host"] = host }
        return Self.json(merged)
    }

    /// The supervisor's table of workers (`[{"worker", "pid", "state", "restarts", "last_exit"}]`) joined with each
    /// worker's own answer (pid, open WebSockets); "ok" only if every worker answered.
    public static func health(_ answers: [Answer], supervisorTable: String?) -> String {
        var table: [Int: [String: Any]] = [:]
        if let supervisorTable, let data = supervisorTable.data(using: .utf8),
            let rows = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]]
        {
            for row in rows { if let worker = row["worker"] as? Int { table[worker] = row } }
        }
        var workers: [Any] = []
        var healthy = true
        for answer in answers {
            var row = table[answer.worker] ?? ["worker": answer.worker]
            if let body = answer.body, let object = Self.object(body) {
                for (key, value) in object where key != "status" { row[key] = value }
                row["worker"] = answer.worker
            } else {
                healthy = false
                row["error"] = answer.error ?? "no answer"
            }
            workers.append(row)
        }
        return Self.json(["status": healthy ? "ok" : "degraded", "workers": workers] as [String: Any])
    }

    /// Every worker's samples, each labelled `worker="n"`, grouped by metric family under one HELP/TYPE header
    /// (the text format wants a family's samples together), after `agenthost_worker_up{worker="n"}`.
    public static func metrics(_ answers: [Answer]) -> String {
        var order: [String] = []
        var headers: [String: [String]] = [:]
        var samples: [String: [String]] = [:]
        for answer in answers {
            guard let body = answer.body else { continue }
            var family = ""
            for line in body.split(separator: "\n", omittingEmptySubsequences: true) {
                if line.hasPrefix("#") {
                    let parts = line.split(separator: " ", maxSplits: 3)
                    guard parts.count >= 3, parts[1] == "HELP" || parts[1] == "TYPE" else { continue }
                    family = String(parts[2])
                    let kind = "# \(parts[1]) "
                    if headers[family] == nil && samples[family] == nil { order.append(family) }
                    if !(headers[family] ?? []).contains(where: { $0.hasPrefix(kind) }) {
                        headers[family, default: []].append(String(line))
                    }
                    continue
                }
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                let key = family.isEmpty || !name.hasPrefix(family) ? name : family
                if headers[key] == nil && samples[key] == nil { order.append(key) }
                samples[key, default: []].append(Self.labelled(line, worker: answer.worker))
            }
        }
        // Whether each worker answered: a family of its own, so a silent worker shows as 0, not as missing lines.
        var text = "# HELP agenthost_worker_up Whether the worker answered this scrape.\n# TYPE agenthost_worker_up gauge\n"
        for answer in answers { text += #"agenthost_worker_up{worker="\#(answer.worker)"} \#(answer.body == nil ? 0 : 1)"# + "\n" }
        for family in order {
            for header in headers[family] ?? [] { text += header + "\n" }
            for sample in samples[family] ?? [] { text += sample + "\n" }
        }
        return text
    }

    /// `name{a="b"} 1` -> `name{worker="n",a="b"} 1`; `name 1` -> `name{worker="n"} 1`.
    static func labelled(_ line: Substring, worker: Int) -> String {
        let label = #"worker="\#(worker)""#
        guard let end = line.firstIndex(where: { $0 == "{" || $0 == " " }) else { return String(line) }
        if line[end] == "{" {
            let rest = line[line.index(after: end)...]
            let separator = rest.hasPrefix("}") ? "" : ","
            return "\(line[..<end]){\(label)\(separator)\(rest)"
        }
        return "\(line[..<end]){\(label)}\(line[end...])"
    }

    private static func object(_ body: String) -> [String: Any]? {
        guard let data = body.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    private static func json(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
