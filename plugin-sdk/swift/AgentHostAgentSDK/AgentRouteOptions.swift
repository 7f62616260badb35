/// What the SDK enforces for every run of an agent route; read from the plugin's config.
public struct AgentRouteOptions: Sendable {
    /// How long a run waits for `input_response` before it ends with `completion {status: "timeout"}`.
    public var inputTimeoutMilliseconds = 300_000
    /// How long a run may take in all (0: no limit) before it ends with `completion {status: "timeout"}`.
    public var runTimeoutMilliseconds = 600_000
    /// How long a live run goes on with no socket watching it (its client went away) before it is cancelled, so a
    /// client can `resume` it. Ended runs stay resumable as long as the host's run log keeps them (its retention).
    public var resumeGraceMilliseconds = 60_000
    public var maxRunsPerConnection = 16
    public var maxRuns = 1000
    /// Live runs one identity may have on the route (anonymous clients: see `maxRunsPerAddress`), so one
    /// credential cannot take every slot of `maxRuns`.
    public var maxRunsPerIdentity = 64
    /// Live runs started from one client address (IPv4 address, or IPv6 /64; the port does not count), whatever
    /// the identity: one machine opening many sockets cannot take every slot either.
    public var maxRunsPerAddress = 128
    /// The largest task a `start` may carry (its JSON text, in bytes): a task is copied into several frames of
    /// its run and kept for resume, so its size multiplies.
    public var maxTaskBytes = 128 << 10
    /// Whether a `start` frame's `team_config` reaches the route. Off by default: a team config is code (tools
    /// carry source that AutoGen executes), so accepting one from a client lets that client run code on the host.
    public var allowClientTeamConfig = false

    public init() {}

    /// The config keys the SDK accepts.
    public static let keys: Set<String> = Set([
        "input_timeout_ms", "run_timeout_ms", "resume_grace_ms", "max_runs_per_connection", "max_runs",
        "allow_client_team_config", "max_runs_per_identity", "max_runs_per_address", "max_task_bytes",
    ]).union(movedKeys)

    /// Keys of the replay buffer the SDK kept before runs moved to the host's run log. Still accepted (and
    /// checked), so a config written for an older SDK loads, but they do nothing: the host's run log retention
    /// (bytes per run, runs, age) bounds what runs keep, and the host paces each socket's delivery.
    public static let movedKeys: Set<String> = [
        "buffer_frames", "buffer_bytes", "max_retained_runs", "max_replay_bytes_per_identity", "max_replay_bytes",
    ]

    public init(config: AgentRouteConfig) throws {
        self.inputTimeoutMilliseconds = try config.int("input_timeout_ms", default: 300_000, range: 1...86_400_000)
        self.runTimeoutMilliseconds = try config.int("run_timeout_ms", default: 600_000, range: 0...86_400_000)
        self.resumeGraceMilliseconds = try config.int("resume_grace_ms", default: 60_000, range: 0...86_400_000)
        // Moved to the host (see `movedKeys`): read only so a bad value is still reported.
        _ = try config.int("buffer_frames", default: 4096, range: 4...1_000_000)
        _ = try config.int("buffer_bytes", default: 8 << 20, range: 65_536...(1 << 30))
        _ = try config.int("max_retained_runs", default: 10_000, range: 0...10_000_000)
        _ = try config.int("max_replay_bytes_per_identity", default: 32 << 20, range: 65_536...(1 << 40))
        _ = try config.int("max_replay_bytes", default: 256 << 20, range: 65_536...(1 << 40))
        self.maxRunsPerConnection = try config.int("max_runs_per_connection", default: 16, range: 1...10_000)
        self.maxRuns = try config.int("max_runs", default: 1000, range: 1...1_000_000)
        self.maxRunsPerIdentity = try config.int("max_runs_per_identity", default: 64, range: 1...1_000_000)
        self.maxRunsPerAddress = try config.int("max_runs_per_address", default: 128, range: 1...1_000_000)
        self.maxTaskBytes = try config.int("max_task_bytes", default: 128 << 10, range: 1024...(64 << 20))
        self.allowClientTeamConfig = try config.bool("allow_client_team_config", default: false)
    }
}
