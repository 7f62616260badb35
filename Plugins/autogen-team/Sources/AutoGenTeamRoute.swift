import AgentHostAgentSDK
import AgentHostPluginSDK
import CAgentHostPlugin
import Foundation

/// autogen-team: serves real AutoGen teams (Python `autogen-agentchat`) through the agent protocol.
///
/// Each route's team is AutoGen's declarative component JSON from the plugin's config; runs execute in a pool of
/// Python worker processes (Plugins/autogen-team/python/agenthost_autogen_worker.py) speaking JSON lines. The SDK
/// does the protocol (framing, seq, resume, stop, input timeouts); this file only bridges a run to a worker.
///
/// Config (`plugin_config.autogen-team`):
///
///     {
///       "python": ".venv-autogen/bin/python",          // default "python3"
///       "worker": "Plugins/autogen-team/python/agenthost_autogen_worker.py",
///       "workers": 2,                                  // pool size, default: number of cores
///       "hang_timeout_ms": 10000,                      // a worker silent this long is killed and replaced
///       "start_timeout_ms": 10000,                     // a run waits this long for a worker being (re)started
///       "max_image_bytes": 5242880,                    // per image in a task, decoded from base64 (5 MiB)
///       "max_image_pixels": 16777216,                  // per image, read from its header before decoding (16 Mpx)
///       "max_task_image_pixels": 33554432,             // all images of one task together (32 Mpx)
///       "max_worker_image_pixels": 67108864,           // all images the live runs of one worker hold (64 Mpx)
///       "max_queued_event_bytes": 33554432,            // a run's events waiting for a slow client (32 MiB)
///       "max_worker_line_bytes": 335544320,            // a longer worker line: killed as broken (8 B/px + 64 MiB)
///       "max_queued_event_bytes_total": 603979776,     // all runs' waiting events (256 MiB + one longest line)
///       "routes": {
///         "/agents/writer": {"team_file": "examples/teams/round_robin.json"},
///         "/api/ws/runs/*": {"team": { ...AutoGen component JSON... }}
///       },
///       "input_timeout_ms": 300000, "run_timeout_ms": 600000, "resume_grace_ms": 60000,
///       "allow_client_team_config": false              // DANGEROUS: a team config is code (see the docs)
///     }
public struct AutoGenTeamRoute: AgentRoute {
    public static let name = "autogen-team"
    public static let version = "1.0.0"
    /// Every path below /agents/ (the config says which have a team) and AutoGen Studio's run route.
    public static let routes = ["/agents/*", "/api/ws/runs/*"]
    public static let runIDRoutes = ["/api/ws/runs/*"]
    public static let configKeys: Set<String>? = ["python", "worker", "workers", "hang_timeout_ms", "start_timeout_ms",
                                                  "max_image_bytes", "max_image_pixels", "max_task_image_pixels",
                                                  "max_worker_image_pixels", "max_queued_event_bytes",
                                                  "max_worker_line_bytes", "max_queued_event_bytes_total",
                                                  "routes"]

    let pool: WorkerPool
    let allowClientTeamConfig: Bool
    /// The routes (paths or patterns) that have a team; each is also the team's key in the workers.
    let teams: Set<String>

    public init(host: PluginHost, config: AgentRouteConfig) throws {
        guard let script = try config.string("worker") else {
            throw AgentRunError("config key worker must name the worker script (agenthost_autogen_worker.py)")
        }
        guard FileManager.default.isReadableFile(atPath: script) else {
            throw AgentRunError("worker script \(script) is not readable")
        }
        guard let routes = try config.object("routes"), !routes.object.isEmpty else {
            throw AgentRunError("config key routes must map at least one route to a team")
        }
        var configs: [String: String] = [:]
        for path in routes.object.keys.sorted() {
            guard let entry = try routes.object(path) else {
                throw AgentRunError("routes.\(path) must be an object with \"team\" or \"team_file\"")
            }
            try entry.rejectUnknownKeys(["team", "team_file"], in: "routes.\(path)")
            guard AgentRoutePattern.bestMatch(for: path, in: Self.routes) != nil else {
                throw AgentRunError("route \(path) is not under /agents/ or /api/ws/runs/")
            }
            configs[path] = try Self.team(entry, route: path)
        }
        self.teams = Set(configs.keys)
        self.allowClientTeamConfig = try AgentRouteOptions(config: config).allowClientTeamConfig
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var settings = WorkerPool.Settings(
            python: try config.string("python") ?? "python3",
            script: script,
            size: try config.int("workers", default: max(1, cores), range: 1...64),
            hangTimeoutSeconds: Double(try config.int("hang_timeout_ms", default: 10_000, range: 100...600_000)) / 1000,
            startTimeoutSeconds: Double(try config.int("start_timeout_ms", default: 10_000, range: 0...600_000)) / 1000,
            teams: configs)
        // Defaults: 5 MiB is what the large model APIs take per image (Anthropic's limit; OpenAI's is 20 MB but it
        // scales images down to 2048 px a side anyway), and 16 Mpx (4096 x 4096) is above any model's input
        // resolution while bounding one decode to ~112 MB (RGBA, then AutoGen's RGB copy).
        settings.maxImageBytes = try config.int("max_image_bytes", default: 5 << 20, range: 1...(1 << 30))
        settings.maxImagePixels = try config.int("max_image_pixels", default: 16 << 20, range: 1...(1 << 30))
        settings.maxTaskImagePixels = try config.int("max_task_image_pixels", default: 32 << 20, range: 1...(1 << 32))
        // AutoGen keeps a decoded RGB copy of a task's images for the whole run: 64 Mpx is ~192 MB per worker.
        settings.maxWorkerImagePixels = try config.int("max_worker_image_pixels",
                                                       default: max(64 << 20, settings.maxTaskImagePixels),
                                                       range: settings.maxTaskImagePixels...(1 << 36))
        settings.maxQueuedEventBytes = try config.int("max_queued_event_bytes", default: 32 << 20,
                                                      range: (1 << 20)...(1 << 30))
        // A result line carries the task's images re-encoded as PNG (RGBA and filter bytes: up to ~4 bytes a
        // pixel, 4/3 of that as base64) and the run's other messages: 8 bytes a pixel of the task's images, plus
        // 64 MiB, fits it with room to spare (320 MiB by default). Only a broken worker writes a longer line.
        settings.maxWorkerLineBytes = try config.int("max_worker_line_bytes",
                                                     default: 8 * settings.maxTaskImagePixels + (64 << 20),
                                                     range: (1 << 16)...(1 << 36))
        // All runs of the pool share a total of queued events (one address may have 128 runs): 256 MiB, plus one
        // longest line so that one legitimate event never overflows its run on its own.
        settings.maxQueuedEventBytesTotal = try config.int("max_queued_event_bytes_total",
                                                           default: (256 << 20) + settings.maxWorkerLineBytes,
                                                           range: (1 << 20)...(1 << 40))
        self.pool = try WorkerPool(settings: settings) { host.log($0, $1) }
        host.log(.info, "autogen-team: \(settings.size) workers, teams for \(configs.keys.sorted().joined(separator: ", "))")
    }

    public func admit(_ info: OpenInfo) throws {
        guard self.teamKey(forPath: info.route) != nil || self.allowClientTeamConfig else {
            throw AgentRunError("no team is configured for \(info.route)")
        }
    }

    public func run(_ run: AgentRun) async throws -> AgentRunResult {
        let key = self.teamKey(forPath: run.origin.route)
        guard key != nil || run.teamConfig != nil else {
            throw AgentRunError("no team is configured for \(run.origin.route)")
        }
        let handle = try await self.pool.start(taskJSON: run.task.json, teamKey: key, teamJSON: run.teamConfig)
        return try await withTaskCancellationHandler {
            for await event in handle.events {
                switch event {
                case .event(let json, let chunk):
                    try await run.emit(AgentEvent(kind: chunk ? .chunk : .message, json: json))
                case .inputRequest(let requestID, let prompt, let json):
                    let response = try await run.requestInput(prompt: prompt, requestID: requestID,
                                                              event: AgentEvent(kind: .message, json: json))
                    handle.answer(requestID: requestID, response: response)
                case .result(let json):
                    return .taskResult(json: json)
                case .cancelled:
                    throw CancellationError()
                case .backlogged(let message):
                    handle.stop(reason: message)
                    throw AgentRunError(message)
                case .error(let message), .workerLost(let message):
                    // As the worker wrote it: the client gets it JSON-encoded in `completion.error`, and the host
                    // escapes control characters where the SDK logs it (the message can quote the client's task).
                    throw AgentRunError(message)
                }
            }
            throw AgentRunError("the AutoGen worker ended the run without a result")
        } onCancel: {
            handle.stop(reason: "Cancelled by user")
        }
    }

    public func shutdown() {
        self.pool.shutdown()
    }

    // MARK: Teams

    func teamKey(forPath path: String) -> String? {
        AgentRoutePattern.bestMatch(for: path, in: self.teams)
    }

    /// A route's team: inline (`team`) or from a file (`team_file`), as JSON text for the workers.
    static func team(_ entry: AgentRouteConfig, route: String) throws -> String {
        if let inline = try entry.json("team") { return inline }
        guard let file = try entry.string("team_file") else {
            throw AgentRunError("route \(route) needs \"team\" (AutoGen component JSON) or \"team_file\"")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw AgentRunError("route \(route): cannot read team_file \(file)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), object is [String: Any] else {
            throw AgentRunError("route \(route): team_file \(file) is not a JSON object")
        }
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }
}

@c public func agenthost_plugin_entry_v1(_ hostMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
    AgentPlugin<AutoGenTeamRoute>.descriptor()
}
