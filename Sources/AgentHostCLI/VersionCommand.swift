import AgentHostPlugins
import ArgumentParser

/// `agenthost version`: what a plugin author matches a build against (see `HostBuild`).
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the host's version, the plugin ABI it speaks and the Swift toolchain it was built with.")

    func run() {
        let build = HostBuild.current
        print("agenthost \(build.version)")
        print("plugin ABI \(build.abi)")
        print("Swift \(build.swift); toolchain: \(build.swiftToolchain ?? "unknown (no compiler note in the executable)")")
        print("Swift plugins must be built with this toolchain, without -static-stdlib (see plugin-sdk/README.md).")
    }
}
