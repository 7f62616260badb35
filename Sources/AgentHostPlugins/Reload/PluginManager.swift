import AgentHostCore
import AgentHostRunLog
import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Owns the plugins in service and replaces them without dropping a connection.
///
/// A reload reads every `*.so` of the plugin directory once (`PluginFileSnapshot`). A file that is new, or whose
/// SHA-256 changed, is loaded beside the generation in service; then the whole route table is published with one
/// swap (`Router.publish`). New connections go to the new generation; open ones keep the endpoint they opened on
/// until they close. Replaced and removed generations drain: at `drainTimeout` their remaining connections get
/// close 1012 (Service Restart), and once the last is gone their instance is dropped. Any failure refuses only the
/// file at fault, with one log line, and leaves what was serving in service. Libraries are never dlclosed.
///
/// Reloads run one after another (each waits for the one before; `ReloadService` also coalesces triggers that
/// arrive during one). Everything that blocks (reading and hashing files, staging copies, `dlopen`,
/// `instance_create` and `instance_drop`, which may wait seconds for a plugin's own workers) runs on NIO's blocking
/// thread pool, never on Swift's cooperative pool, which also runs authentication and the admin routes. Drains
/// wait for signals from the endpoint and the run log, not by polling.
public actor PluginManager {
    public struct Configuration: Sendable {
        public var directory: String
        /// Per plugin name: the JSON bytes handed to `instance_create`.
        public var pluginConfigs: [String: [UInt8]] = [:]
        public var drainTimeout: Duration = .seconds(30)
        /// How long a replaced generation is kept for the runs it still writes (their clients may have gone and
        /// resume through the new generation): past it they end with the terminal frame (writer gone).
        public var runDrainTimeout: Duration = .seconds(600)
        /// `sha256sum`-format file pinning each allowed plugin file; re-read on every reload.
        public var allowlistPath: String?
        /// Larger plugin files are refused unread.
        public var maxFileSize = PluginFileSnapshot.defaultMaxSize

        public init(directory: String) {
            self.directory = directory
        }
    }

    /// One loaded version of a plugin.
    final class Generation: Sendable {
        let id: Int
        let plugin: LoadedPlugin
        let fileName: String
        let loadedAt: Date

        /// SHA-256 of the config bytes its instance was created with: a new config makes a new generation.
        let configSHA256: String

        init(id: Int, plugin: LoadedPlugin, fileName: String, configSHA256: String) {
            self.id = id
            self.plugin = plugin
            self.fileName = fileName
            self.loadedAt = Date()
            self.configSHA256 = configSHA256
        }
    }

    private struct Refusal {
        var sha256: String?
        /// The refused version of the file, when it was read: it is not read again until it changes.
        var fingerprint: PluginFileFingerprint?
        var cause: RefusalCause
        var reason: String
        var at: Date
    }

    /// Whether a refusal can change while the file stays the same.
    private enum RefusalCause {
        /// Something about the file itself: it stays refused until its bytes change.
        case file
        /// instance_create refused, with the plugin configs it was given (their digest): reconsidered once they
        /// change, since a fixed plugin_config is how an operator answers "instance_create failed".
        case instanceCreate(configs: String)
        /// A route or name already taken, with what the file claims: reconsidered on every reload, since the
        /// plugin it clashed with may be gone.
        case conflict(PluginClaims)
        /// Not in the allowlist: reconsidered on every reload, since the allowlist is re-read.
        case allowlist
    }

    public private(set) var configuration: Configuration
    private var loader: PluginLoader
    private let router: Router
    private let registry: ConnectionRegistry
    private let group: any EventLoopGroup
    private let logger: Logger

    /// In service, by file name.
    private var serving: [String: Generation] = [:]
    private var draining: [Int: Generation] = [:]
    /// The last refusal of each file (by file name), so a file refused once is not retried, nor logged again,
    /// until its bytes change.
    private var refused: [String: Refusal] = [:]
    private var nextGeneration = 1
    private var reloads = 0
    /// Names in the plugin directory that are not plugin files, already mentioned once.
    private var ignored: Set<String> = []
    /// The reload running or last run: the next one waits for it (the actor is reentrant at every await).
    private var lastReload: Task<ReloadReport, Never>?
    /// Set by `shutdown`: no reload starts after it, and one in flight stops before it changes what serves.
    private var shuttingDown = false
    private let threadPool: NIOThreadPool

    public init(configuration: Configuration, staging: PluginStaging, router: Router, registry: ConnectionRegistry,
                group: any EventLoopGroup, threadPool: NIOThreadPool = .singleton, logger: Logger) {
        self.configuration = configuration
        self.threadPool = threadPool
        var loaderConfiguration = PluginLoader.Configuration(directory: configuration.directory)
        loaderConfiguration.pluginConfigs = configuration.pluginConfigs
        loaderConfiguration.maxFileSize = configuration.maxFileSize
        loaderConfiguration.eventLoopGroup = group
        self.loader = PluginLoader(configuration: loaderConfiguration, staging: staging, logger: logger)
        self.router = router
        self.registry = registry
        self.group = group
        self.logger = logger
    }

    // MARK: Reloading

    /// A reloaded config file's plugin settings: the next reload gives each plugin whose `plugin_config` changed a
    /// new generation from the same file (side by side, the old one drained as for new code), and the drain
    /// deadlines, allowlist and size limit apply from then on. The directory is the one the host started with.
    public func update(_ next: Configuration) {
        var next = next
        next.directory = self.configuration.directory
        self.configuration = next
        var loaderConfiguration = PluginLoader.Configuration(directory: next.directory)
        loaderConfiguration.pluginConfigs = next.pluginConfigs
        loaderConfiguration.maxFileSize = next.maxFileSize
        loaderConfiguration.eventLoopGroup = self.loader.configuration.eventLoopGroup
        self.loader = PluginLoader(configuration: loaderConfiguration, staging: self.loader.staging, logger: self.logger)
    }

    /// The config bytes plugin `name` gets, and their SHA-256 (what a generation records).
    private func configSHA256(forPlugin name: String) -> String {
        Self.sha256(self.configuration.pluginConfigs[name] ?? Array("{}".utf8))
    }

    /// One digest of every plugin's config bytes (by name, in name order).
    private var configsDigest: String {
        var bytes: [UInt8] = []
        for (name, config) in self.configuration.pluginConfigs.sorted(by: { $0.key < $1.key }) {
            bytes += Array(name.utf8) + [0] + Array(String(config.count).utf8) + [0] + config
        }
        return Self.sha256(bytes)
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// Brings the plugins in service in line with the directory. Never throws: every problem is a refusal.
    @discardableResult
    public func reload() async -> ReloadReport {
        guard !self.shuttingDown else { return ReloadReport(reload: self.reloads) }
        let previous = self.lastReload
        let reload = Task {
            _ = await previous?.value
            return await self.reloadNow()
        }
        self.lastReload = reload
        return await reload.value
    }

    /// Runs `body` on the blocking thread pool.
    private func offload<T: Sendable>(_ body: @escaping @Sendable () throws(PluginLoadError) -> T)
        async throws(PluginLoadError) -> T
    {
        let result: Result<T, PluginLoadError>
        do {
            result = try await self.threadPool.runIfActive { () -> Result<T, PluginLoadError> in
                do throws(PluginLoadError) { return .success(try body()) } catch { return .failure(error) }
            }
        } catch {
            throw PluginLoadError(.staging, "the host is shutting down (its blocking thread pool has stopped)")
        }
        return try result.get()
    }

    private func reloadNow() async -> ReloadReport {
        let started = ContinuousClock.now
        self.reloads += 1
        var report = ReloadReport(reload: self.reloads)

        let allowlist: PluginAllowlist?
        do {
            let path = self.configuration.allowlistPath
            allowlist = try await self.offload { () throws(PluginLoadError) -> PluginAllowlist? in
                do {
                    return try path.map { try PluginAllowlist.load(path: $0) }
                } catch {
                    throw PluginLoadError(.staging, "\(error)")
                }
            }
        } catch {
            report.failure = error.description
            self.logger.error("reload refused: the allowlist is unreadable; plugins in service are unchanged",
                              metadata: ["reason": "\(error.description)"])
            return report
        }
        let files: [String]
        do {
            let loader = self.loader
            let listing = try await self.offload { () throws(PluginLoadError) in try loader.directoryListing() }
            files = listing.plugins
            self.mentionIgnored(listing.ignored)
        } catch {
            report.failure = error.description
            self.logger.error("reload refused: plugins in service are unchanged", metadata: ["reason": "\(error)"])
            return report
        }

        var next = self.serving
        var retiring: [Generation] = []
        for (fileName, generation) in self.serving where !files.contains(fileName) {
            next[fileName] = nil
            retiring.append(generation)
            report.removed.append(generation.plugin.name)
        }
        for fileName in self.refused.keys where !files.contains(fileName) { self.refused[fileName] = nil }
        // An allowlist that no longer lists a build in service revokes it: it drains like a removed file.
        for (fileName, generation) in next {
            guard let reason = allowlist?.refusal(fileName: fileName, sha256: generation.plugin.sha256) else { continue }
            next[fileName] = nil
            retiring.append(generation)
            report.removed.append(generation.plugin.name)
            self.refuse(fileName, sha256: generation.plugin.sha256, fingerprint: generation.plugin.fingerprint,
                        reason: reason, cause: .allowlist, into: &report)
        }

        for fileName in files {
            // What the other files in service claim; this file's own current generation is being replaced.
            var routeOwners: [String: String] = [:]
            var names: Set<String> = []
            for (otherFile, generation) in next where otherFile != fileName {
                names.insert(generation.plugin.name)
                for route in generation.plugin.routes { routeOwners[route] = generation.plugin.name }
            }
            var known: [PluginFileFingerprint] = []
            // A generation whose config changed is made again from the same file: it is read as if it had changed.
            let configChanged = next[fileName].map { $0.configSHA256 != self.configSHA256(forPlugin: $0.plugin.name) }
                ?? false
            if let current = next[fileName], !configChanged { known.append(current.plugin.fingerprint) }
            let stillRefused = self.refused[fileName].map { previous in
                switch previous.cause {
                case .file: return true
                case .instanceCreate(let configs): return configs == self.configsDigest
                case .conflict(let claims): return claims.conflict(routeOwners: routeOwners, loadedNames: names) != nil
                case .allowlist: return allowlist?.refusal(fileName: fileName, sha256: previous.sha256 ?? "") != nil
                }
            } ?? false
            if stillRefused, let fingerprint = self.refused[fileName]?.fingerprint {
                known.append(fingerprint)  // refused, and nothing it depended on changed: stays refused, unread
            }
            let snapshot: PluginFileSnapshot
            do {
                let (directory, maxSize) = (self.configuration.directory, self.configuration.maxFileSize)
                let known = known
                let read = try await self.offload { () throws(PluginLoadError) in
                    try PluginFileSnapshot.read(directory: directory, fileName: fileName, maxSize: maxSize,
                                                unlessUnchangedFrom: known)
                }
                switch read {
                case .unchanged(let fingerprint):
                    if next[fileName]?.plugin.fingerprint == fingerprint { report.unchanged += 1 }
                    continue
                case .changed(let read):
                    snapshot = read
                }
            } catch {
                self.refuse(fileName, sha256: nil, fingerprint: nil, reason: error.description, into: &report)
                continue
            }
            if let current = next[fileName], current.plugin.sha256 == snapshot.sha256, !configChanged {
                report.unchanged += 1
                continue
            }
            if stillRefused, self.refused[fileName]?.sha256 == snapshot.sha256 {
                self.refused[fileName]?.fingerprint = snapshot.fingerprint
                continue  // refused before, bytes unchanged: still refused, already logged
            }
            if let allowlist, let reason = allowlist.refusal(fileName: fileName, sha256: snapshot.sha256) {
                self.refuse(fileName, sha256: snapshot.sha256, fingerprint: snapshot.fingerprint, reason: reason,
                            cause: .allowlist, into: &report)
                continue
            }
            // The loader and its configs together, before the await: an update meanwhile applies next time.
            let configs = self.configuration.pluginConfigs
            let configsDigest = self.configsDigest
            do {
                let loader = self.loader
                let (routeOwners, names) = (routeOwners, names)
                let plugin = try await self.offload { () throws(PluginLoadError) in
                    try loader.load(snapshot, routeOwners: routeOwners, loadedNames: names)
                }
                if self.shuttingDown {
                    // Stopped meanwhile: this instance never serves; it goes the way the others went.
                    _ = await self.dropInstance(plugin.endpoint, force: true)
                    break
                }
                let generation = Generation(id: self.nextGeneration, plugin: plugin, fileName: fileName,
                                            configSHA256: Self.sha256(configs[plugin.name] ?? Array("{}".utf8)))
                self.nextGeneration += 1
                if let old = next[fileName] {
                    retiring.append(old)
                    report.replaced.append(old.plugin.sha256 == plugin.sha256
                        ? "\(plugin.name) \(plugin.version) (new config)"
                        : "\(plugin.name) \(old.plugin.version)->\(plugin.version)")
                } else {
                    report.loaded.append("\(plugin.name) \(plugin.version)")
                }
                next[fileName] = generation
                self.refused[fileName] = nil
            } catch {
                self.refuse(fileName, sha256: snapshot.sha256, fingerprint: snapshot.fingerprint,
                            reason: error.description,
                            cause: error.claims.map { .conflict($0) }
                                ?? (error.kind == .instanceCreate ? .instanceCreate(configs: configsDigest) : .file),
                            into: &report)
            }
        }

        if self.shuttingDown {
            // The host stopped during this reload: what it loaded never served, and is dropped now.
            let serving = Set(self.serving.values.map(\.id))
            for generation in next.values where !serving.contains(generation.id) {
                _ = await self.dropInstance(generation.plugin.endpoint, force: true)
            }
            return report
        }
        // One swap: every new connection from here on sees the new table.
        var routes: [String: any WebSocketEndpoint] = [:]
        for generation in next.values {
            for route in generation.plugin.routes { routes[route] = generation.plugin.endpoint }
        }
        self.router.publish(RouteTable(routes))
        self.serving = next
        for generation in retiring {
            self.draining[generation.id] = generation
            Task { await self.drain(generation) }
        }

        report.serving = next.count
        report.duration = ContinuousClock.now - started
        self.logger.info("plugins reloaded", metadata: report.metadata)
        return report
    }

    /// Says once per name that a file in the plugin directory is not loaded: an operator who copied `reverse.so.new`
    /// or `.reverse.so` in and sent SIGHUP would otherwise wonder why nothing happened.
    private func mentionIgnored(_ names: [String]) {
        let current = Set(names)
        for name in names.sorted() where !self.ignored.contains(name) {
            self.logger.notice("ignored in the plugin directory: only files named *.so that do not start with '.' are loaded",
                               metadata: ["file": "\(self.configuration.directory)/\(name)"])
        }
        self.ignored = current
    }

    private func refuse(_ fileName: String, sha256: String?, fingerprint: PluginFileFingerprint?, reason: String,
                        cause: RefusalCause = .file, into report: inout ReloadReport) {
        let previous = self.refused[fileName]
        self.refused[fileName] = Refusal(sha256: sha256, fingerprint: fingerprint, cause: cause, reason: reason,
                                         at: previous?.reason == reason ? previous?.at ?? Date() : Date())
        report.refused.append("\(fileName): \(reason)")
        // Said once: a file refused again for the same reason (still too large, still clashing) is not news.
        guard previous?.reason != reason else { return }
        Refusals.count(.pluginRefused)
        self.logger.error("plugin refused", metadata: [
            "file": "\(self.configuration.directory)/\(fileName)", "reason": "\(reason)",
        ])
    }

    // MARK: Draining

    private func drain(_ generation: Generation) async {
        let endpoint = generation.plugin.endpoint
        let started = ContinuousClock.now
        await self.notifyDrain(endpoint)
        let connectionsClosed = await endpoint.connectionsChanged.wait(until: started + self.configuration.drainTimeout) {
            endpoint.pendingConnections == 0
        }
        if !connectionsClosed {
            self.logger.info("drain deadline passed: closing with 1012", metadata: [
                "plugin": "\(generation.plugin.name)", "generation": "\(generation.id)",
                "connections": "\(endpoint.openConnections)",
            ])
            await self.closeAll(endpoint)
        }
        // Runs this generation writes go on without its sockets (their clients resume through the new generation,
        // and stop and input reach them as run log signals): dropping the instance would end them all.
        let runDeadline = started + max(self.configuration.drainTimeout, self.configuration.runDrainTimeout)
        let runLog = RunLogHostFunctions.service
        let runsEnded = await runLog.logsEnded.wait(until: runDeadline) { endpoint.liveRuns == 0 }
        if !runsEnded {
            self.logger.warning("run drain deadline passed: the old generation's live runs end", metadata: [
                "plugin": "\(generation.plugin.name)", "generation": "\(generation.id)", "runs": "\(endpoint.liveRuns)",
            ])
        }
        // A connection whose upgrade was answered just before the swap may still arrive: drop only when none is
        // open or reserved (atomically with refusing new reservations), else close it the same way and try again.
        await self.flushEventLoops()
        while !(await self.dropInstance(endpoint, force: false)) {
            await endpoint.connectionsChanged.wait { endpoint.reservedConnections == 0 }
            await self.closeAll(endpoint)
            await self.flushEventLoops()
        }
        self.draining[generation.id] = nil
        self.logger.info("plugin generation retired", metadata: [
            "plugin": "\(generation.plugin.name)", "generation": "\(generation.id)",
        ])
    }

    /// Closes the endpoint's connections with 1012; those whose clients do not answer within the close handshake's
    /// own timeout are dropped.
    private func closeAll(_ endpoint: PluginEndpoint) async {
        for handle in endpoint.openHandles {
            _ = self.registry.lookup(handle)?.close(code: CloseCode.serviceRestart, reason: "service restart")
        }
        let answered = await endpoint.connectionsChanged.wait(until: ContinuousClock.now + .seconds(10)) {
            endpoint.openConnections == 0
        }
        guard !answered else { return }
        for handle in endpoint.openHandles { self.registry.lookup(handle)?.abort() }
        await endpoint.connectionsChanged.wait { endpoint.openConnections == 0 }
    }

    /// on_drain on the blocking thread pool: the plugin may flush or tell its clients before it returns.
    private func notifyDrain(_ endpoint: PluginEndpoint) async {
        if (try? await self.threadPool.runIfActive { endpoint.notifyDrain() }) == nil { endpoint.notifyDrain() }
    }

    /// `dropInstance` on the blocking thread pool: `instance_drop` may wait for the plugin's own threads.
    private func dropInstance(_ endpoint: PluginEndpoint, force: Bool) async -> Bool {
        (try? await self.threadPool.runIfActive { endpoint.dropInstance(force: force) })
            ?? endpoint.dropInstance(force: force)
    }

    /// Runs an empty task on every event loop: work queued there before (events for closed connections of a
    /// retiring instance) has run once this returns.
    private func flushEventLoops() async {
        for loop in self.group.makeIterator() {
            try? await loop.submit {}.get()
        }
    }

    /// Drops every instance (at exit, after the server stopped and its connections are closed).
    public func shutdown() async {
        self.shuttingDown = true
        _ = await self.lastReload?.value  // a reload in flight stops short of publishing (see reloadNow)
        await self.flushEventLoops()
        // The server has stopped and closed its connections.
        for generation in Array(self.serving.values) + Array(self.draining.values) {
            await self.notifyDrain(generation.plugin.endpoint)  // once: a draining one was told already
            _ = await self.dropInstance(generation.plugin.endpoint, force: true)
        }
        self.serving = [:]
        self.draining = [:]
    }

    // MARK: Status

    public func status() -> [PluginStatus] {
        var all: [PluginStatus] = []
        for generation in self.serving.values { all.append(self.status(generation, state: "serving")) }
        for generation in self.draining.values { all.append(self.status(generation, state: "draining")) }
        for (fileName, refusal) in self.refused {
            all.append(PluginStatus(
                name: nil, version: nil, routes: [], sha256: refusal.sha256, configSHA256: nil, generation: nil,
                state: "refused",
                reason: refusal.reason, openConnections: 0, loadedAt: ISO8601DateFormatter().string(from: refusal.at),
                file: "\(self.configuration.directory)/\(fileName)", swiftToolchain: nil))
        }
        return all.sorted { ($0.name ?? "~", $0.generation ?? 0, $0.file) < ($1.name ?? "~", $1.generation ?? 0, $1.file) }
    }

    private func status(_ generation: Generation, state: String) -> PluginStatus {
        PluginStatus(
            name: generation.plugin.name, version: generation.plugin.version, routes: generation.plugin.routes,
            sha256: generation.plugin.sha256, configSHA256: generation.configSHA256, generation: generation.id,
            state: state, reason: nil,
            openConnections: generation.plugin.endpoint.pendingConnections,
            loadedAt: ISO8601DateFormatter().string(from: generation.loadedAt), file: generation.plugin.file,
            swiftToolchain: generation.plugin.swiftToolchain)
    }
}

/// One line of `GET /plugins`.
public struct PluginStatus: Codable, Sendable, Equatable {
    public var name: String?
    public var version: String?
    public var routes: [String]
    public var sha256: String?
    /// SHA-256 of the plugin_config its instance was created with (nil for a refused file).
    public var configSHA256: String?
    public var generation: Int?
    /// "serving", "draining" or "refused".
    public var state: String
    public var reason: String?
    public var openConnections: Int
    public var loadedAt: String
    public var file: String
    /// The Swift toolchain that compiled the plugin (nil without Swift code): compare with the host's.
    public var swiftToolchain: String?

    enum CodingKeys: String, CodingKey {
        case name, version, routes, sha256, generation, state, reason, file
        case swiftToolchain = "swift_toolchain"
        case openConnections = "open_connections"
        case configSHA256 = "config_sha256"
        case loadedAt = "loaded_at"
    }
}

/// What one reload changed; logged as one line.
public struct ReloadReport: Sendable {
    public var reload: Int
    public var loaded: [String] = []
    public var replaced: [String] = []
    public var removed: [String] = []
    public var refused: [String] = []
    public var unchanged = 0
    /// Plugin files in service after the reload.
    public var serving = 0
    /// Set when the reload did nothing at all (directory or allowlist unreadable).
    public var failure: String?
    public var duration: Duration = .zero

    var metadata: Logger.Metadata {
        [
            "reload": "\(self.reload)", "loaded": "\(self.loaded)", "replaced": "\(self.replaced)",
            "removed": "\(self.removed)", "refused": "\(self.refused.count)", "unchanged": "\(self.unchanged)",
            "duration_ms": "\(Double(self.duration.components.attoseconds) / 1e15 + Double(self.duration.components.seconds) * 1000)",
        ]
    }
}
