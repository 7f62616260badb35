import Foundation

/// `agenthost new-plugin`: a plugin project of its own, ready to build, test, load and hot-reload as written.
///
/// The templates are the SDK's examples (plugin-sdk/examples: one project per language and kind), copied with the
/// example's name, module and route replaced by the new plugin's, and the SDK's path written into Package.swift
/// (`AGENTHOST_PLUGIN_SDK` still overrides it). So the examples a reader browses, the projects CI builds outside the
/// repository and what `new-plugin` writes are one set of files.
public struct PluginScaffold: Sendable, Equatable {
    public enum Language: String, CaseIterable, Sendable {
        case c, swift
    }

    public enum Kind: String, CaseIterable, Sendable {
        /// The host calls the plugin for each message (C or Swift).
        case callback
        /// Each connection is a task with an async sequence of messages (Swift).
        case async
        /// An agent route speaking the AutoGen Studio protocol superset (Swift, agent SDK).
        case agent
    }

    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    public let name: String
    public let language: Language
    public let kind: Kind
    /// The SDK package's directory: the examples are read from it, and the project's Package.swift names it.
    public let sdkPath: String

    /// Module names a plugin's would hide or loop with (the Swift and C modules its project or its test imports,
    /// and the runtime's own), and those whose plugin type (`<Module>Plugin`, `<Module>Route`) is an SDK protocol's
    /// name (AgentHost -> AgentHostPlugin, Async -> AsyncPlugin, Agent -> AgentRoute and AgentPlugin).
    static let reservedModuleNames: Set<String> = [
        "Swift", "SwiftOnoneSupport", "SwiftShims", "Cxx", "CxxStdlib", "Foundation", "FoundationEssentials",
        "FoundationInternationalization", "FoundationNetworking", "FoundationXML", "Testing", "XCTest", "Dispatch",
        "Glibc", "Musl", "Synchronization", "Observation", "Distributed", "RegexBuilder", "CAgentHostPlugin",
        "AgentHostPluginSDK", "AgentHostAgentSDK", "AgentHostPluginTestKit", "AgentHost", "Async", "Agent",
    ]

    public init(name: String, language: Language, kind: Kind, sdkPath: String) throws(Invalid) {
        guard sdkPath.hasPrefix("/") else { throw Invalid(description: "the SDK path must be absolute: \(sdkPath)") }
        guard !sdkPath.contains(where: { $0 == "\"" || $0 == "\\" || $0.isNewline }) else {
            throw Invalid(description: "the SDK path cannot hold quotes, backslashes or line breaks: \(sdkPath)")
        }
        // SwiftPM names a path dependency after the path's last component, and the project names the SDK's
        // products as the package "plugin-sdk".
        guard URL(fileURLWithPath: sdkPath).lastPathComponent == "plugin-sdk" else {
            throw Invalid(description: "the SDK path must end in /plugin-sdk (SwiftPM names a package after its "
                          + "folder, and the project's Package.swift names it plugin-sdk): \(sdkPath)")
        }
        // The host's own rule for plugin names (its descriptor is refused otherwise).
        guard (1...64).contains(name.utf8.count),
              name.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D || $0 == 0x5F }),
              let first = name.utf8.first, (0x61...0x7A).contains(first)
        else {
            throw Invalid(description: "plugin name '\(name)': 1-64 of a-z, 0-9, '-' and '_', starting with a letter")
        }
        guard !Self.reservedModuleNames.contains(Self.moduleName(of: name)) else {
            throw Invalid(description: "plugin name '\(name)': its module, \(Self.moduleName(of: name)), would hide "
                          + "or clash with a module or SDK type of that name the project uses")
        }
        if language == .c && kind != .callback {
            throw Invalid(description: "a C plugin is a callback plugin (--kind callback); for an agent route in C "
                          + "see plugin-sdk/c/include/agenthost_agent.h and Plugins/c-agent")
        }
        self.name = name
        self.language = language
        self.kind = kind
        self.sdkPath = sdkPath
    }

    /// The example each language and kind is made from: its directory (its plugin name) under plugin-sdk/examples.
    public static func exampleName(language: Language, kind: Kind) -> String {
        switch (language, kind) {
        case (.c, _): "c-shout"
        case (.swift, .callback): "greeter"
        case (.swift, .async): "async-shout"
        case (.swift, .agent): "echo-agent"
        }
    }

    /// How the examples' Package.swift finds the SDK (beside them); a project gets its path instead.
    public static let exampleSDKLine = #"?? "\(Context.packageDirectory)/../..""#

    /// The Swift (and C) module name of a plugin name: UpperCamelCase ("echo-agent" -> "EchoAgent").
    public static func moduleName(of name: String) -> String {
        name.split(whereSeparator: { $0 == "-" || $0 == "_" }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// The route a plugin of this kind serves: `/NAME`, or `/agents/NAME` for an agent route.
    public static func route(of name: String, kind: Kind) -> String { kind == .agent ? "/agents/\(name)" : "/\(name)" }

    public var moduleName: String { Self.moduleName(of: self.name) }
    public var route: String { Self.route(of: self.name, kind: self.kind) }

    /// The files of the project, by path relative to its directory: the example's, renamed.
    public func files() throws -> [String: String] {
        let example = Self.exampleName(language: self.language, kind: self.kind)
        let directory = URL(fileURLWithPath: self.sdkPath).appendingPathComponent("examples/\(example)")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue,
              let paths = FileManager.default.enumerator(atPath: directory.path)
        else {
            throw Invalid(description: "no example project at \(directory.path): is \(self.sdkPath) the plugin SDK?")
        }
        // The example's route, module and name, longest first (its route holds its name), each through a marker
        // so that a new name holding the example's is not replaced again.
        let replacements = [
            (Self.route(of: example, kind: self.kind), self.route), (Self.moduleName(of: example), self.moduleName),
            (example, self.name),
        ]
        func renamed(_ text: String) -> String {
            var text = text
            for (index, (old, _)) in replacements.enumerated() { text = text.replacingOccurrences(of: old, with: "\u{1}\(index)\u{1}") }
            for (index, (_, new)) in replacements.enumerated() { text = text.replacingOccurrences(of: "\u{1}\(index)\u{1}", with: new) }
            return text
        }
        var files: [String: String] = [:]
        for case let path as String in paths {
            // A build of the example, or what an editor left beside it, is not part of it.
            if path == ".build" || path == ".swiftpm" {
                paths.skipDescendants()
                continue
            }
            let url = directory.appendingPathComponent(path)
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  path != "Package.resolved", let contents = try? String(contentsOf: url, encoding: .utf8)
            else { continue }
            files[renamed(path)] = renamed(contents)
                .replacingOccurrences(of: Self.exampleSDKLine, with: "?? \"\(self.sdkPath)\"")
        }
        guard files["Package.swift"]?.contains("?? \"\(self.sdkPath)\"") == true else {
            throw Invalid(description: "the example \(directory.path) has no Package.swift naming the SDK as expected")
        }
        return files
    }

    /// Writes the project into `directory` (created; refused if it exists and is not empty).
    public func write(to directory: String) throws {
        let files = try self.files()
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw Invalid(description: "\(directory) is a file, not a directory") }
            guard (try? manager.contentsOfDirectory(atPath: directory))?.isEmpty == true else {
                throw Invalid(description: "\(directory) exists and is not empty (or cannot be read): new-plugin writes "
                              + "a new project")
            }
        } else if (try? manager.destinationOfSymbolicLink(atPath: directory)) != nil {
            throw Invalid(description: "\(directory) is a symbolic link to nothing")
        }
        for (path, contents) in files.sorted(by: { $0.key < $1.key }) {
            let url = URL(fileURLWithPath: directory).appendingPathComponent(path)
            do {
                try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(contents.utf8).write(to: url)
            } catch {
                throw Invalid(description: "cannot write \(url.path) (\(error.localizedDescription)): the "
                              + "project in \(directory) is incomplete; remove it and try again")
            }
        }
    }

    /// Where the SDK package is for a host binary at `executable`: `AGENTHOST_PLUGIN_SDK`, else the `plugin-sdk`
    /// of the checkout it was built in (found by walking up from the executable), else nil.
    public static func locateSDK(executable: String, environment: [String: String]) -> String? {
        if let path = environment["AGENTHOST_PLUGIN_SDK"], !path.isEmpty { return path }
        var directory = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("plugin-sdk")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("Package.swift").path) {
                return candidate.path
            }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}
