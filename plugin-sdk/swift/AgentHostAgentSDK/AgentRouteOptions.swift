/// What the SDK enforces for every run of an agent route; read from the plugin's config.
public struct AgentRouteOptions: Sendable {
    /// How long a run waits for `input_response` before it ends with `completion {status: "timeout"}`.
    public var inputTimeoutMilliseconds = 300_000
    /// How long a run may take in all (0: no limit) before it ends with `completion {status: "timeout"}`.
    public var runTimeoutMilliseconds = 600_000
    /// How long a run outlives its socket waiting for `resume`, and how long a finished run stays resumable.
    public var resumeGraceMilliseconds = 60_000
    /// The per-run replay buffer: the oldest frames are dropped past either bound.
    public var bufferFrames = 4096
    public var bufferBytes = 8 << 20
    /// A run's producer waits while this many of its frames are queued but not yet written to its client.
    public var maxUnsentFrames = 256
    public var maxRunsPerConnection = 16
    public var maxRuns = 1000
    /// Ended runs kept for resume; past this the oldest are forgotten before their grace period ends.
    public var maxRetainedRuns = 10_000
    /// Whether a `start` frame's `team_config` reaches the route. Off by default: a team config is code (tools
    /// carry source that AutoGen executes), so accepting one from a client lets that client run code on the host.
    public var allowClientTeamConfig = false

    public init() {}

    /// The config keys the SDK reads.
    public static let keys: Set<String> = [
        "input_timeout_ms", "run_timeout_ms", "resume_grace_ms", "buffer_frames", "buffer_bytes",
        "max_runs_per_connection", "max_runs", "max_retained_runs", "allow_client_team_config",
    ]

    public init(config: AgentRouteConfig) throws {
        self.inputTimeoutMilliseconds = try config.int("input_timeout_ms", default: 300_000, range: 1...86_400_000)
        self.runTimeoutMilliseconds = try config.int("run_timeout_ms", default: 600_000, range: 0...86_400_000)
        self.resumeGraceMilliseconds = try config.int("resume_grace_ms", default: 60_000, range: 0...86_400_000)
        self.bufferFrames = try config.int("buffer_frames", default: 4096, range: 4...1_000_000)
        self.bufferBytes = try config.int("buffer_bytes", default: 8 << 20, range: 65_536...(1 << 30))
        self.maxRunsPerConnection = try config.int("max_runs_per_connection", default: 16, range: 1...10_000)
        self.maxRuns = try config.int("max_runs", default: 1000, range: 1...1_000_000)
        self.maxRetainedRuns = try config.int("max_retained_runs", default: 10_000, range: 0...10_000_000)
        self.allowClientTeamConfig = try config.bool("allow_client_team_config", default: false)
    }
}
