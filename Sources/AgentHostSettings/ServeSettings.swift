import AgentHostAuth
import AgentHostCore
import AgentHostPlugins
import AgentHostRunLog
import Foundation
import Logging
import NIOCore

/// Everything `agenthost serve` is configured with: the defaults (the initial values here and in the structs it
/// holds), then the config file, then the command line's flags on top, checked. Made the same way at start and for
/// every SIGHUP reload (`resolve`), so a file the server could not start with is never put in service.
public struct ServeSettings: Sendable {
    /// The listening server: address, limits, WebSocket settings, route policies. Its TLS context and
    /// authenticator are made from `tls*` and `auth` by the command.
    public var server = ServerConfiguration()
    /// The plugin directory; nil: only the admin routes and /healthz are served.
    public var plugins: String?
    /// Drain deadlines, plugin size limit, allowlist and plugin configs (the directory is `plugins`).
    public var pluginManager = PluginManager.Configuration(directory: "")
    public var runLog = RunLogConfiguration()
    public var auth: AuthConfiguration?
    /// nil: one loop per core (with workers, cores / workers, at least 1).
    public var eventLoops: Int?
    public var workers = 1
    /// With workers, a plugin callback blocking an event loop this long gets its worker killed; nil: off.
    public var watchdog: Duration? = .seconds(10)
    public var logLevel: Logger.Level = .info
    public var watch = false
    /// From the file; `AGENTHOST_ADMIN_TOKEN` in the environment wins (see `resolve`).
    public var adminToken: String?
    public var tlsCert: String?
    public var tlsKey: String?
    public var tlsClientCA: String?
    public var stateDir: String?
    /// The keys the config file or the command line set (the rest hold their defaults), for defaults that depend
    /// on other settings.
    public internal(set) var given: Set<String> = []

    public init() {}

    /// The defaults, then the config file at `configFile`, then `commandLine` (flags as `ServeSettings.parse`
    /// returned them), checked together. Errors name the file, key or flag.
    public static func resolve(configFile: String?, commandLine: [(Setting, String)],
                               environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(SettingsError) -> ServeSettings
    {
        var settings = ServeSettings()
        if let configFile {
            try ConfigFileReader.apply(try ConfigFileReader.load(path: configFile), to: &settings, file: configFile)
        }
        for (setting, value) in commandLine {
            try setting.assign(.text(value), to: &settings)
        }
        if let token = environment["AGENTHOST_ADMIN_TOKEN"], !token.isEmpty { settings.adminToken = token }
        settings.applyMemoryDefaults()
        try settings.validate()
        return settings
    }

    /// A config file's bytes, checked as `resolve` checks them (a regular file, not too large): for a copy of the
    /// file that must be the one checked.
    public static func readConfigFile(at path: String) throws(SettingsError) -> Data {
        try ConfigFileReader.read(path: path)
    }

    /// Without a state dir the run log is kept in memory, not on a disk: unless the operator chose them, its
    /// totals are what the agent SDK's replay buffers were allowed before the run log held them.
    mutating func applyMemoryDefaults() {
        guard self.stateDir == nil else { return }
        let retention = self.runLog.retention
        if !self.given.contains("run_log.max_total_bytes") {
            self.runLog.retention.maxTotalBytes = max(RunLogRetention.memoryDefaultTotalBytes, retention.maxBytesPerLog)
        }
        if !self.given.contains("run_log.max_ended_bytes_per_owner") {
            self.runLog.retention.maxEndedBytesPerOwner = max(RunLogRetention.memoryDefaultBytesPerOwner,
                                                              retention.maxBytesPerLog)
        }
    }

    /// The checks that involve more than one setting (each setting's own range is checked as it is read).
    public func validate() throws(SettingsError) {
        let webSocket = self.server.webSocket
        if webSocket.outboundLowWatermark > webSocket.outboundHighWatermark {
            throw SettingsError("websocket.outbound_low_watermark (\(webSocket.outboundLowWatermark)) must not exceed "
                + "websocket.outbound_high_watermark (\(webSocket.outboundHighWatermark))")
        }
        if webSocket.outboundHighWatermark > webSocket.outboundHardLimit {
            throw SettingsError("websocket.outbound_high_watermark (\(webSocket.outboundHighWatermark)) must not exceed "
                + "websocket.outbound_hard_limit (\(webSocket.outboundHardLimit)): a plugin would be told to write on "
                + "while its client is closed for not reading")
        }
        if (self.tlsCert == nil) != (self.tlsKey == nil) {
            throw SettingsError("TLS needs both tls_cert and tls_key (--tls-cert and --tls-key)")
        }
        if self.tlsClientCA != nil && self.tlsCert == nil {
            throw SettingsError("tls_client_ca needs tls_cert and tls_key: client certificates are asked for over TLS")
        }
        // A total smaller than one run would delete a large run the moment it ends.
        let retention = self.runLog.retention
        for (key, value) in [("max_total_bytes", retention.maxTotalBytes),
                             ("max_ended_bytes_per_owner", retention.maxEndedBytesPerOwner)]
        where value < retention.maxBytesPerLog {
            throw SettingsError("run_log.\(key) (\(value)) must be at least run_log.max_bytes_per_log "
                + "(\(retention.maxBytesPerLog)): a run that size would be deleted as soon as it ended")
        }
    }

    /// Whether the listening host can be bound to: a name that does not resolve would otherwise fail at bind, after
    /// the plugins loaded, without naming the setting. Blocking (a name is looked up; an address literal is not):
    /// called at start only, where nothing else waits; a reload cannot change `listen` anyway.
    public func checkListenHost() throws(SettingsError) {
        do {
            _ = try SocketAddress.makeAddressResolvingHost(self.server.host, port: self.server.port)
        } catch {
            throw SettingsError("listen: cannot use host '\(self.server.host)': \(error)")
        }
    }

    /// These settings with every restart-only one as `started` has it: what a process that started with `started`
    /// runs after reloading these (a worker process a supervisor starts again takes its restart-only settings
    /// from the configuration the supervisor started with, not from a file changed since).
    public func keepingRestartOnly(from started: ServeSettings) -> ServeSettings {
        var settings = self
        for setting in Self.catalog where setting.applies == .atRestart {
            setting.copy(from: started, to: &settings)
            if started.given.contains(setting.key) {
                settings.given.insert(setting.key)
            } else {
                settings.given.remove(setting.key)
            }
        }
        return settings
    }

    /// The keys of the settings only a restart applies whose values differ between `old` and `new`. A key neither
    /// sets keeps a default that follows another setting (the run log's totals follow `state_dir`): that one is
    /// named, not its consequences.
    public static func restartOnlyChanges(from old: ServeSettings, to new: ServeSettings) -> [String] {
        Self.catalog.filter {
            $0.applies == .atRestart && $0.describe(old) != $0.describe(new)
                && (old.given.contains($0.key) || new.given.contains($0.key))
        }.map(\.key)
    }
}

extension ServeSettings {
    /// The plugin manager's configuration for `directory` (the directory is fixed at start; the rest reloads).
    public func pluginManagerConfiguration(directory: String) -> PluginManager.Configuration {
        var configuration = self.pluginManager
        configuration.directory = directory
        return configuration
    }
}
