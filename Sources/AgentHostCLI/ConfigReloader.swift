import AgentHostCore
import AgentHostPlugins
import ArgumentParser
import Logging
import Synchronization

/// SIGHUP's first step: re-reads the config file and puts what can change while serving in service.
///
/// The new file is checked as at start (`ConfigFile.load`, then the same resolution with the command line's flags
/// on top, the authenticator built and its JWKS read): anything wrong refuses the whole file with the reason, and
/// the configuration in service stays. A good file applies to the connections that arrive from then on (limits,
/// WebSocket settings, route policies, authentication, admin access), and gives every plugin whose `plugin_config`
/// changed a new generation (the plugin reload that follows loads it beside the old one, which drains). What the
/// process was built with (the listening address, TLS on or off, workers, event loops, the state dir, the plugin
/// directory, the log level) keeps its value until a restart, and the log says which of those changed.
final class ConfigReloader: Sendable {
    let path: String
    let command: ServeCommand
    /// The file last put in service, to tell which restart-only settings changed.
    private let current: Mutex<ConfigFile>
    let server: AgentHostServer
    let manager: PluginManager?
    let logger: Logger

    init(path: String, command: ServeCommand, loaded: ConfigFile, server: AgentHostServer, manager: PluginManager?,
         logger: Logger) {
        self.path = path
        self.command = command
        self.current = Mutex(loaded)
        self.server = server
        self.manager = manager
        self.logger = logger
    }

    func reload() async {
        let file: ConfigFile
        let resolved: ServerConfiguration
        do {
            file = try ConfigFile.load(path: self.path)
            resolved = try await self.command.resolveServer(file)
            // Restart-only settings are checked too: a file the server could not start with is refused now, not
            // found out at the next restart (or by the next worker a supervisor respawns).
            _ = try ServeCommand.logLevel(self.command.logLevel ?? file.logLevel ?? "info")
            if (file.tlsCert == nil) != (file.tlsKey == nil) {
                throw ValidationError("TLS needs both tls_cert and tls_key")
            }
        } catch {
            self.logger.error("configuration reload refused: the configuration in service stays", metadata: [
                "file": "\(self.path)", "reason": "\(Self.describe(error))",
            ])
            return
        }
        var kept = self.server.update(resolved)
        if let manager = self.manager {
            let directory = await manager.configuration.directory
            await manager.update(self.command.pluginManagerConfiguration(directory: directory, file: file))
        }
        let previous = self.current.withLock { previous in
            defer { previous = file }
            return previous
        }
        kept += Self.restartOnly(previous, file)
        self.logger.info("configuration reloaded: it applies to new connections", metadata: ["file": "\(self.path)"])
        if !kept.isEmpty {
            self.logger.warning("changed settings that take effect at the next restart (the values in service stay)",
                                metadata: ["settings": "\(kept.joined(separator: ", "))"])
        }
    }

    /// The file settings only a restart applies, by config key, that differ between two files.
    static func restartOnly(_ old: ConfigFile, _ new: ConfigFile) -> [String] {
        var changed: [String] = []
        if old.plugins != new.plugins { changed.append("plugins") }
        if old.eventLoops != new.eventLoops { changed.append("event_loops") }
        if old.workers != new.workers { changed.append("workers") }
        if old.logLevel != new.logLevel { changed.append("log_level") }
        if old.watch != new.watch { changed.append("watch") }
        if old.stateDir != new.stateDir { changed.append("state_dir") }
        if old.runLog != new.runLog { changed.append("run_log") }
        if old.tlsCert != new.tlsCert || old.tlsKey != new.tlsKey || old.tlsClientCA != new.tlsClientCA {
            changed.append("tls_cert/tls_key/tls_client_ca (the files themselves reload on SIGHUP)")
        }
        return changed
    }

    private static func describe(_ error: any Error) -> String {
        if let validation = error as? ValidationError { return validation.message }
        return "\(error)"
    }
}
