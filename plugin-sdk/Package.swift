// swift-tools-version:6.1
import PackageDescription

// The AgentHost plugin SDK as a package of its own, with no dependencies: a plugin project depends on this and
// resolves nothing else (the host's package, which uses it from here, brings 16 packages). One source of truth for
// the ABI: the C header in c/include.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "AgentHostPluginSDK",
    products: [
        // The C ABI: `agenthost_plugin.h` (and `agenthost_agent.h`). Swift plugins need it for the entry's
        // signature; C plugins include the header directly.
        .library(name: "CAgentHostPlugin", targets: ["CAgentHostPlugin"]),
        // The Swift SDK: callbacks (`AgentHostPlugin`) and async/await (`AsyncPlugin`). Depends on the header alone.
        .library(name: "AgentHostPluginSDK", targets: ["AgentHostPluginSDK"]),
        // The agent-route layer: the AutoGen Studio protocol superset on top of the SDK.
        .library(name: "AgentHostAgentSDK", targets: ["AgentHostAgentSDK"]),
        // Drives a built plugin in-process without a server, for plugin authors' tests.
        .library(name: "AgentHostPluginTestKit", targets: ["AgentHostPluginTestKit"]),
    ],
    targets: [
        .target(name: "CAgentHostPlugin", path: "c", publicHeadersPath: "include"),
        .target(
            name: "AgentHostPluginSDK",
            dependencies: ["CAgentHostPlugin"],
            path: "swift/AgentHostPluginSDK",
            swiftSettings: strictSettings
        ),
        // Uses Foundation for JSON and UUIDs: the host links Foundation dynamically too, so a plugin shares the
        // process's one copy.
        .target(
            name: "AgentHostAgentSDK",
            dependencies: ["AgentHostPluginSDK", "CAgentHostPlugin"],
            path: "swift/AgentHostAgentSDK",
            swiftSettings: strictSettings
        ),
        .target(
            name: "AgentHostPluginTestKit",
            dependencies: ["CAgentHostPlugin"],
            path: "swift/AgentHostPluginTestKit",
            swiftSettings: strictSettings
        ),
    ]
)
