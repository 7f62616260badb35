import AgentHostScaffold
import ArgumentParser
import Foundation

/// `agenthost new-plugin NAME --lang c|swift --kind callback|async|agent`: a plugin project of its own (see
/// `PluginScaffold`), ready to build, test and load.
struct NewPluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-plugin",
        abstract: "Write a new plugin project (sources, Package.swift, a test with the SDK's test kit, a README).")

    @Argument(help: "The plugin's name (1-64 of a-z, 0-9, '-', '_'): its route is /NAME (/agents/NAME for an agent), its library libNAME.so.")
    var name: String

    @Option(help: "c or swift.")
    var lang: String = "swift"

    @Option(help: "callback, async (Swift) or agent (Swift: an agent route).")
    var kind: String = "callback"

    @Option(help: "The directory to write (default: ./NAME); it must not exist or be empty.")
    var dir: String?

    @Option(help: "The plugin SDK package (plugin-sdk of an AgentHost checkout; default: AGENTHOST_PLUGIN_SDK, else the checkout this agenthost was built in).")
    var sdk: String?

    func run() throws {
        guard let language = PluginScaffold.Language(rawValue: self.lang) else {
            throw ValidationError("--lang must be one of: \(PluginScaffold.Language.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let kind = PluginScaffold.Kind(rawValue: self.kind) else {
            throw ValidationError("--kind must be one of: \(PluginScaffold.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        guard let sdk = self.sdk ?? PluginScaffold.locateSDK(executable: executable,
                                                            environment: ProcessInfo.processInfo.environment)
        else {
            throw ValidationError("where is the plugin SDK? Pass --sdk PATH (the plugin-sdk directory of an AgentHost "
                                  + "checkout) or set AGENTHOST_PLUGIN_SDK")
        }
        let sdkPath = URL(fileURLWithPath: sdk).standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: "\(sdkPath)/Package.swift") else {
            throw ValidationError("\(sdkPath) is not the plugin SDK package (no Package.swift)")
        }
        let scaffold: PluginScaffold
        do {
            scaffold = try PluginScaffold(name: self.name, language: language, kind: kind, sdkPath: sdkPath)
        } catch {
            throw ValidationError(error.description)
        }
        let directory = URL(fileURLWithPath: self.dir ?? self.name).standardizedFileURL.path
        do {
            try scaffold.write(to: directory)
        } catch let error as PluginScaffold.Invalid {
            throw ValidationError(error.description)
        }
        print("""
            wrote \(directory): \(language.rawValue) \(kind.rawValue) plugin '\(scaffold.name)' serving \(scaffold.route)
              cd \(Self.shellQuoted(directory)) && swift test && swift build -c release --product \(scaffold.name)
              then install .build/release/lib\(scaffold.name).so into the plugin directory (README.md has the steps)
            """)
    }

    /// A path as one shell word (single quotes unless it needs none), for the line the user pastes.
    static func shellQuoted(_ path: String) -> String {
        let plain = path.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "/._-+,:@".unicodeScalars.contains($0) }
        return plain ? path : "'" + path.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}
