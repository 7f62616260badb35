import AgentHostCore
import AgentHostPlugins
import AgentHostSettings
import AgentHostWorkers
import ArgumentParser
import Logging

/// SIGHUP's first step: re-reads the config file and puts what can change while serving in service.
///
/// The new file is checked as at start (`ServeSettings.resolve`: the file, then the command line's flags on top, then
/// the checks; then the authenticator built and its JWKS read): anything wrong refuses the whole file with the reason, and
/// the configuration in service stays. A good file applies to the connections that arrive from then on (limits,
/// WebSocket settings, route policies, authentication, admin access), and gives every plugin whose `plugin_config`
/// changed a new generation (the plugin reload that follows loads it beside the old one, which drains). What the
/// process was built with (the listening address, TLS on or off, workers, event loops, the state dir, the plugin
/// directory, the log level: the catalog's `.atRestart` settings) keeps its value until a restart, and the log says
/// which of those changed.
final class ConfigReloader: Sendable {
    let path: String
    let command: ServeCommand
    /// A worker reads what its supervisor accepted (see `WorkerConfigSnapshot`), not the operator's file.
    let worker: WorkerContext?
    /// The settings the process started with: restart-only settings keep these values until a restart, so a
    /// reload compares with them (not with the last reload) and says on every reload what still waits for one.
    let started: ServeSettings
    let server: AgentHostServer
    let manager: PluginManager?
    let logger: Logger

    init(path: String, command: ServeCommand, worker: WorkerContext?, started: ServeSettings, server: AgentHostServer,
         manager: PluginManager?, logger: Logger) {
        self.path = path
        self.command = command
        self.worker = worker
        self.started = started
        self.server = server
        self.manager = manager
        self.logger = logger
    }

    func reload() async {
        let settings: ServeSettings
        let resolved: ServerConfiguration
        do {
            // Restart-only settings are checked too: a file the server could not start with is refused now, not
            // found out at the next restart (or by the next worker a supervisor respawns).
            settings = try self.command.resolveSettings(worker: self.worker)
            resolved = try await self.command.makeServer(settings)
        } catch {
            self.logger.error("configuration reload refused: the configuration in service stays", metadata: [
                "file": "\(self.path)", "reason": "\(Self.describe(error))",
            ])
            return
        }
        self.server.update(resolved)
        if let manager = self.manager {
            let directory = await manager.configuration.directory
            await manager.update(settings.pluginManagerConfiguration(directory: directory))
        }
        let kept = ServeSettings.restartOnlyChanges(from: self.started, to: settings)
        self.logger.info("configuration reloaded: it applies to new connections", metadata: ["file": "\(self.path)"])
        Self.warnAboutRestartOnly(kept, logger: self.logger)
    }

    static func warnAboutRestartOnly(_ kept: [String], logger: Logger) {
        guard !kept.isEmpty else { return }
        logger.warning("changed settings that take effect at the next restart (the values in service stay)",
                       metadata: ["settings": "\(kept.joined(separator: ", "))"])
    }

    static func describe(_ error: any Error) -> String {
        if let validation = error as? ValidationError { return validation.message }
        if let settings = error as? SettingsError { return settings.description }
        return "\(error)"
    }
}
