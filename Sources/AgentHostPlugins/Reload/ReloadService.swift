import AgentHostCore
import Logging
import NIOPosix
import Synchronization
import ServiceLifecycle
import UnixSignals

/// Owns SIGHUP (and, with `--watch`, changes to the plugin directory) and turns them into reloads of the config
/// file, the TLS certificate and the plugins, in that order.
///
/// swift-service-lifecycle has no reload hook, so this service traps SIGHUP itself. The trap is installed when the
/// `UnixSignalsSequence` is created, which the caller does before the server says it is listening: a SIGHUP sent
/// right after the listening line must reload, not kill the process. Reloads run one at a time; triggers that
/// arrive during one coalesce into a single further reload.
public struct ReloadService: Service {
    private let manager: PluginManager?
    private let signals: UnixSignalsSequence?
    private let watcher: DirectoryWatcher?
    private let tls: TLSContextProvider?
    /// Re-reads the config file on SIGHUP, before the plugins reload (so they load with its plugin_config).
    private let configReload: (@Sendable () async -> Void)?
    private let logger: Logger

    public init(manager: PluginManager?, signals: UnixSignalsSequence?, watcher: DirectoryWatcher?,
                tls: TLSContextProvider? = nil, configReload: (@Sendable () async -> Void)? = nil, logger: Logger) {
        self.tls = tls
        self.configReload = configReload
        self.manager = manager
        self.signals = signals
        self.watcher = watcher
        self.logger = logger
    }

    public func run() async throws {
        let (triggers, trigger) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
        // Coalescing keeps the newest cause only: a directory change must not swallow a waiting SIGHUP, which alone
        // reloads the config file and the certificate. The flag remembers it whatever cause wakes the loop.
        let hangup = HangupFlag()
        await withDiscardingTaskGroup { group in
            if let signals = self.signals {
                group.addTask {
                    for await _ in signals.cancelOnGracefulShutdown() {
                        hangup.raise()
                        trigger.yield("SIGHUP")
                    }
                }
            }
            if let watcher = self.watcher {
                group.addTask {
                    for await _ in watcher.changes.cancelOnGracefulShutdown() { trigger.yield("directory changed") }
                }
            }
            group.addTask {
                for await cause in triggers {
                    let sighup = hangup.take()
                    if sighup, let configReload = self.configReload { await configReload() }
                    if sighup, let tls = self.tls {
                        // Certificates are renewed on SIGHUP; a bad new pair is refused and the old one stays.
                        do {
                            // Reads and parses files: on the blocking pool, not the cooperative one.
                            try await NIOThreadPool.singleton.runIfActive { try tls.reload() }
                            self.logger.info("TLS certificate reloaded", metadata: [
                                "certificate": "\(tls.settings.certificateChainFile)"])
                        } catch {
                            self.logger.error("TLS reload refused; the certificate in service stays",
                                              metadata: ["reason": "\(error)"])
                        }
                    }
                    guard let manager = self.manager else { continue }
                    self.logger.info("reloading plugins", metadata: ["cause": "\(cause)"])
                    await manager.reload()
                }
            }
            group.addTask {
                try? await gracefulShutdown()
                trigger.finish()
                self.watcher?.stop()
            }
        }
    }
}

/// A SIGHUP not yet handled.
final class HangupFlag: Sendable {
    private let pending = Atomic<Bool>(false)
    func raise() { self.pending.store(true, ordering: .sequentiallyConsistent) }
    func take() -> Bool { self.pending.exchange(false, ordering: .sequentiallyConsistent) }
}
