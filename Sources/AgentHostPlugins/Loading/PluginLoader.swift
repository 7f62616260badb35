import AgentHostCore
import CAgentHostPlugin
import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix

/// One plugin that passed every check and has a live instance.
public struct LoadedPlugin: Sendable {
    public let name: String
    public let version: String
    public let routes: [String]
    public let file: String
    public let stagedFile: String
    public let sha256: String
    public let fingerprint: PluginFileFingerprint
    public let endpoint: PluginEndpoint
    /// The Swift toolchain that compiled it (see `SwiftBuild`); nil for a plugin without Swift code.
    public let swiftToolchain: String?
}

/// A file that was refused, and why.
public struct RefusedPlugin: Sendable, Equatable {
    public let file: String
    public let error: PluginLoadError
}

/// Loads every `*.so` of a plugin directory: vet, stage a private copy, dlopen, find the versioned entry,
/// validate the descriptor, create the instance. A file failing any step is refused with one log line and
/// the others still load.
public struct PluginLoader: Sendable {
    public struct Configuration: Sendable {
        public var directory: String
        /// Per plugin name: the JSON bytes handed to `instance_create` ("{}" when absent).
        public var pluginConfigs: [String: [UInt8]] = [:]
        /// Larger plugin files are refused unread.
        public var maxFileSize = PluginFileSnapshot.defaultMaxSize
        /// Where instances' own timers and posts fire (each instance gets one loop of the group).
        public var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

        public init(directory: String) {
            self.directory = directory
        }
    }

    public let configuration: Configuration
    public let staging: PluginStaging
    private let logger: Logger

    public init(configuration: Configuration, staging: PluginStaging, logger: Logger) {
        self.configuration = configuration
        self.staging = staging
        self.logger = logger
    }

    /// The `*.so` files of the plugin directory, sorted so that conflicts resolve the same way every time.
    public func pluginFiles() throws(PluginLoadError) -> [String] {
        try self.directoryListing().plugins
    }

    /// The plugin directory's entries: the plugin files (sorted, so that conflicts resolve the same way every
    /// time) and the names that are not plugin file names (no `.so` suffix, or a dot-file such as an editor's or
    /// a copy's temporary file), which are never loaded.
    public func directoryListing() throws(PluginLoadError) -> (plugins: [String], ignored: [String]) {
        guard let names = DirectoryEntries.names(in: self.configuration.directory) else {
            let reason = errno == ENOENT ? "it does not exist" : String(cString: strerror(errno))
            throw PluginLoadError(.staging, "cannot read plugin directory \(self.configuration.directory): \(reason)")
        }
        let plugins = names.filter(Self.isPluginFileName).sorted()
        return (plugins, names.filter { !Self.isPluginFileName($0) }.sorted())
    }

    static func isPluginFileName(_ name: String) -> Bool {
        name.hasSuffix(".so") && !name.hasPrefix(".")
    }

    /// Loads every plugin file once (the in-process test server uses this; `PluginManager` adds reloading on top).
    /// Route and name conflicts are refused in file order: the first claim wins.
    public func loadAll() throws(PluginLoadError) -> (loaded: [LoadedPlugin], refused: [RefusedPlugin]) {
        var loaded: [LoadedPlugin] = []
        var refused: [RefusedPlugin] = []
        var routeOwners: [String: String] = [:]
        for file in try self.pluginFiles() {
            let path = "\(self.configuration.directory)/\(file)"
            do {
                let plugin = try self.load(fileName: file, routeOwners: routeOwners, loadedNames: Set(loaded.map(\.name)))
                for route in plugin.routes { routeOwners[route] = plugin.name }
                loaded.append(plugin)
                self.logger.info("plugin loaded", metadata: [
                    "file": "\(path)", "plugin": "\(plugin.name)", "version": "\(plugin.version)",
                    "routes": "\(plugin.routes.joined(separator: ","))",
                ])
            } catch {
                refused.append(RefusedPlugin(file: path, error: error))
                self.logger.error("plugin refused", metadata: ["file": "\(path)", "reason": "\(error.description)"])
            }
        }
        return (loaded, refused)
    }

    /// Loads one file. `routeOwners` and `loadedNames` are what is already claimed.
    public func load(fileName: String, routeOwners: [String: String] = [:],
                     loadedNames: Set<String> = []) throws(PluginLoadError) -> LoadedPlugin {
        let snapshot = try PluginFileSnapshot.read(directory: self.configuration.directory, fileName: fileName,
                                                   maxSize: self.configuration.maxFileSize)
        return try self.load(snapshot, routeOwners: routeOwners, loadedNames: loadedNames)
    }

    /// Loads a file already read: stage its bytes, dlopen the copy, validate, create the instance.
    public func load(_ snapshot: PluginFileSnapshot, routeOwners: [String: String] = [:],
                     loadedNames: Set<String> = []) throws(PluginLoadError) -> LoadedPlugin {
        let swift = try Self.checkBeforeLoading(snapshot.bytes)
        if let swift, let ours = SwiftBuild.host {
            if let theirs = swift.toolchain, theirs != ours {
                self.logger.warning("\(SwiftBuild.otherToolchainWarning)", metadata: [
                    "file": "\(snapshot.path)", "plugin_toolchain": "\(theirs)", "host_toolchain": "\(ours)",
                ])
            } else if swift.toolchain == nil {
                self.logger.warning("\(SwiftBuild.unknownToolchainWarning)", metadata: [
                    "file": "\(snapshot.path)", "host_toolchain": "\(ours)",
                ])
            }
        }
        let staged = try self.staging.stage(snapshot.bytes, name: snapshot.fileName)
        do {
            return try self.load(snapshot, staged: staged, swiftToolchain: swift?.toolchain, routeOwners: routeOwners,
                                 loadedNames: loadedNames)
        } catch {
            // A refused file's copy is of no use (a mapping, if dlopen made one, outlives the unlink).
            unlink(staged)
            throw error
        }
    }

    private func load(_ snapshot: PluginFileSnapshot, staged: String, swiftToolchain: String?,
                      routeOwners: [String: String], loadedNames: Set<String>) throws(PluginLoadError) -> LoadedPlugin {
        let path = snapshot.path
        // dlopen runs the dynamic loader over the file and the library's constructors: a file malformed past what
        // the checks above read can still crash the process there (ld.so trusts it). This line names the file, so
        // the crash's log says which one to remove.
        self.logger.info("opening plugin file", metadata: ["file": "\(path)", "sha256": "\(snapshot.sha256)"])
        guard let handle = dlopen(staged, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            // dlerror names the private copy: name the file the operator knows.
            throw PluginLoadError(.dlopen, "dlopen failed: \(Self.dlerrorText().replacingOccurrences(of: staged, with: path))")
        }
        // The library is never dlclosed: Swift plugins cannot be unloaded safely (plugin-abi.md), and
        // RTLD_NODELETE keeps even a refused one mapped, so nothing it registered can dangle.
        guard let symbol = dlsym(handle, AGENTHOST_PLUGIN_ENTRY_SYMBOL) else {
            let other = (2...9).first { dlsym(handle, "agenthost_plugin_entry_v\($0)") != nil }
            if let other {
                throw PluginLoadError(.abiVersion, "built for plugin ABI major version \(other) "
                                      + "(exports agenthost_plugin_entry_v\(other)); this host speaks version 1")
            }
            throw PluginLoadError(.missingEntry, "no \(AGENTHOST_PLUGIN_ENTRY_SYMBOL) symbol: not an AgentHost "
                                  + "plugin, or the symbol is not exported (public @c / AGENTHOST_EXPORT)")
        }
        let entry = unsafeBitCast(symbol, to: agenthost_plugin_entry_v1_fn.self)
        guard let descriptor = entry(UInt32(AGENTHOST_ABI_MINOR)) else {
            throw PluginLoadError(.abiVersion, "the plugin's entry refused this host (ABI 1.\(AGENTHOST_ABI_MINOR))")
        }
        let validated = try PluginDescriptor(descriptor)
        let claims = PluginClaims(name: validated.name, routes: validated.routes)
        if let conflict = claims.conflict(routeOwners: routeOwners, loadedNames: loadedNames) { throw conflict }
        let endpoint = try PluginEndpoint.create(
            descriptor: validated, config: self.configuration.pluginConfigs[validated.name] ?? Array("{}".utf8),
            logger: self.logger, eventLoop: self.configuration.eventLoopGroup.next())
        return LoadedPlugin(name: validated.name, version: validated.version, routes: validated.routes,
                            file: path, stagedFile: staged, sha256: snapshot.sha256,
                            fingerprint: snapshot.fingerprint, endpoint: endpoint, swiftToolchain: swiftToolchain)
    }

    /// Refuses, before dlopen runs any of its code, a file that is not a shared object for this machine, does not
    /// export this host's entry symbol, or is Swift code with a Swift runtime of its own (see `ELFImage` and
    /// `SwiftBuild`). Returns what the file says of its Swift build (nil for a plugin without Swift code).
    static func checkBeforeLoading(_ bytes: [UInt8]) throws(PluginLoadError) -> SwiftBuild? {
        let image: ELFImage
        do {
            image = try ELFImage(bytes)
        } catch {
            throw PluginLoadError(.dlopen, "not a plugin shared object: \(error.reason)")
        }
        if image.functions.contains(AGENTHOST_PLUGIN_ENTRY_SYMBOL) {
            let swift = SwiftBuild(image)
            if swift?.carriesOwnRuntime == true { throw PluginLoadError(.swiftRuntime, SwiftBuild.ownRuntimeRefusal) }
            if swift != nil && !SwiftBuild.hostRuntimeIsShared {
                throw PluginLoadError(.swiftRuntime, SwiftBuild.staticHostRefusal)
            }
            return swift
        }
        if let other = (2...9).first(where: { image.functions.contains("agenthost_plugin_entry_v\($0)") }) {
            throw PluginLoadError(.abiVersion, "built for plugin ABI major version \(other) "
                                  + "(exports agenthost_plugin_entry_v\(other)); this host speaks version 1")
        }
        throw PluginLoadError(.missingEntry, "no \(AGENTHOST_PLUGIN_ENTRY_SYMBOL) symbol: not an AgentHost "
                              + "plugin, or the symbol is not exported (public @c / AGENTHOST_EXPORT)")
    }

    private static func dlerrorText() -> String {
        guard let message = dlerror() else { return "unknown error" }
        return String(cString: message)
    }
}
