import AgentHostCore
import CAgentHostPlugin

/// What this host is, for plugin authors matching it: its release, the plugin ABI it speaks and the Swift toolchain
/// that built it (a Swift plugin must come from the same one: see `SwiftBuild`). `agenthost version` prints it and
/// `GET /plugins` shows it beside each plugin's toolchain.
public struct HostBuild: Codable, Sendable, Equatable {
    public let version: String
    public let abi: String
    /// The Swift compiler version the host was compiled with (from `#if compiler`, to the patch release).
    public let swift: String
    /// The toolchain's own note (its llvm-project commit), as plugins carry it; nil if the executable has none.
    public let swiftToolchain: String?

    enum CodingKeys: String, CodingKey {
        case version, abi, swift
        case swiftToolchain = "swift_toolchain"
    }

    public static let current = HostBuild(
        version: AgentHostVersion.current, abi: "\(AGENTHOST_ABI_MAJOR).\(AGENTHOST_ABI_MINOR)",
        swift: Self.compilerVersion, swiftToolchain: SwiftBuild.host)

    private static var compilerVersion: String {
        #if compiler(>=6.4)
        "6.4 or later"
        #elseif compiler(>=6.3.2)
        "6.3.2 or a later 6.3"
        #elseif compiler(>=6.3.1)
        "6.3.1"
        #elseif compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #else
        "before 6.2"
        #endif
    }
}
