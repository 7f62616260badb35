// swift-tools-version:6.1
import PackageDescription

// Swift settings shared by every Swift target (see ../shared/STYLE.md).
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// The per-message path (frame in, plugin call, frame out) touches class properties many times per message; Swift's
// dynamic exclusivity checks on them (swift_beginAccess, a thread-local access set) showed as ~8% of the server's
// CPU under the echo benchmark. The two hot-path modules are compiled without them in release builds only; debug
// builds, which run the tests, keep every check.
let hotPathSettings: [SwiftSetting] = strictSettings + [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

// Plugins bind their own symbols first: if a host ever exported a function with the same name, -Bsymbolic keeps
// the plugin calling its own (measured in ../shared/design/plugin-abi.md). And they export their entry symbol
// alone (plugin-sdk/plugin-exports.map): the native agent plugin exported 644 symbols the host never looks up.
let pluginLinkerSettings: [LinkerSetting] = [.unsafeFlags([
    "-Xlinker", "-Bsymbolic",
    "-Xlinker", "--version-script=\(Context.packageDirectory)/plugin-sdk/plugin-exports.map",
])]

let package = Package(
    name: "AgentHost",
    products: [
        .executable(name: "agenthost", targets: ["AgentHostCLI"]),
        .executable(name: "agenthost-bench", targets: ["AgentHostBench"]),
        .executable(name: "agenthost-agent-bench", targets: ["AgentHostAgentBench"]),
        // Example plugins, each one shared object loaded by the host with dlopen.
        .library(name: "agenthost-echo", type: .dynamic, targets: ["EchoPlugin"]),
        .library(name: "agenthost-chat", type: .dynamic, targets: ["ChatPlugin"]),
        .library(name: "agenthost-wordstream", type: .dynamic, targets: ["WordStreamPlugin"]),
        .library(name: "agenthost-async-echo", type: .dynamic, targets: ["AsyncEchoPlugin"]),
        .library(name: "agenthost-c-agent", type: .dynamic, targets: ["CAgentPlugin"]),
        .library(name: "agenthost-native-agent", type: .dynamic, targets: ["NativeAgentPlugin"]),
        .library(name: "agenthost-autogen-team", type: .dynamic, targets: ["AutoGenTeamPlugin"]),
    ],
    dependencies: [
        // The plugin SDK (C header, Swift SDK, agent SDK, test kit): a package of its own, with no dependencies, so
        // plugin projects depend on it alone (plugin-sdk/README.md).
        .package(path: "plugin-sdk"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        // Minor versions only: the TLS handler (Sources/AgentHostCore/TLS) calls the BoringSSL swift-nio-ssl bundles
        // (its CNIOBoringSSL module), which is not its API and changes with its releases. Review TLS on each bump.
        .package(url: "https://github.com/apple/swift-nio-ssl", .upToNextMinor(from: "2.37.6")),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // MARK: The host
        .target(
            name: "AgentHostCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "AgentHostPlugins",
            dependencies: [
                "AgentHostCore",
                "AgentHostRunLog",
                .product(name: "CAgentHostPlugin", package: "plugin-sdk"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: hotPathSettings
        ),
        // `serve --workers N`: the supervisor, its worker processes, the watchdog and the merged admin routes.
        .target(
            name: "AgentHostWorkers",
            dependencies: [
                "AgentHostCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The system's LZ4 (the reference implementation, as PostgreSQL links it for TOAST compression): the run
        // log compresses its stored chunks with it.
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // A file's type, owner and mode read in C (see its header for why not `stat` from Swift).
        .systemLibrary(name: "CFileStatus", path: "Sources/CFileStatus"),
        // The host-owned run log (ABI 1.1): the service the function table calls, and its storage backends.
        .target(
            name: "AgentHostRunLog",
            dependencies: [
                "AgentHostCore",
                "CLZ4",
                "CFileStatus",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "AgentHostAuth",
            dependencies: [
                "AgentHostCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Every setting of `serve` declared once (config key, flag, default, check) and read from both sources.
        .target(
            name: "AgentHostSettings",
            dependencies: [
                "AgentHostCore",
                "AgentHostAuth",
                "AgentHostPlugins",
                "AgentHostRunLog",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // `agenthost new-plugin`: plugin projects of their own (plugin-sdk/examples is its output, kept equal by a test).
        .target(name: "AgentHostScaffold", swiftSettings: strictSettings),
        .executableTarget(
            name: "AgentHostCLI",
            dependencies: [
                "AgentHostScaffold",
                "AgentHostSettings",
                "AgentHostCore",
                "AgentHostPlugins",
                "AgentHostRunLog",
                "AgentHostAuth",
                "AgentHostWorkers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // What AgentHost's own clients share (bench load clients, the tests' raw client): client framing.
        .target(
            name: "AgentHostClientSupport",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "AgentHostBench",
            dependencies: [
                "AgentHostClientSupport",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        .executableTarget(
            name: "AgentHostAgentBench",
            dependencies: [
                "AgentHostClientSupport",
                "AgentHostRunLog",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Example plugins
        .target(
            name: "EchoPlugin",
            dependencies: [.product(name: "CAgentHostPlugin", package: "plugin-sdk")],
            path: "Plugins/echo",
            publicHeadersPath: ".",  // a plugin exports no headers: only its entry symbol
            linkerSettings: pluginLinkerSettings
        ),
        .target(
            name: "WordStreamPlugin",
            dependencies: [.product(name: "AgentHostPluginSDK", package: "plugin-sdk")],
            path: "Plugins/wordstream",
            swiftSettings: strictSettings,
            linkerSettings: pluginLinkerSettings
        ),

        .target(
            name: "ChatPlugin",
            dependencies: [.product(name: "CAgentHostPlugin", package: "plugin-sdk")],
            path: "Plugins/chat",
            publicHeadersPath: ".",
            linkerSettings: pluginLinkerSettings
        ),
        .target(
            name: "CAgentPlugin",
            dependencies: [.product(name: "CAgentHostPlugin", package: "plugin-sdk")],
            path: "Plugins/c-agent",
            publicHeadersPath: ".",
            linkerSettings: pluginLinkerSettings
        ),
        .target(
            name: "AsyncEchoPlugin",
            dependencies: [.product(name: "AgentHostPluginSDK", package: "plugin-sdk")],
            path: "Plugins/async-echo",
            swiftSettings: strictSettings,
            linkerSettings: pluginLinkerSettings
        ),
        .target(
            name: "NativeAgentPlugin",
            dependencies: [.product(name: "AgentHostAgentSDK", package: "plugin-sdk")],
            path: "Plugins/native-agent",
            swiftSettings: strictSettings,
            linkerSettings: pluginLinkerSettings
        ),
        .target(
            name: "AutoGenTeamPlugin",
            dependencies: [.product(name: "AgentHostAgentSDK", package: "plugin-sdk")],
            path: "Plugins/autogen-team/Sources",
            swiftSettings: strictSettings,
            linkerSettings: pluginLinkerSettings
        ),

        // MARK: Tests
        .testTarget(
            name: "AgentHostCoreTests",
            dependencies: [
                "AgentHostCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // A host function table for SDK unit tests: sockets that record, and a run log in memory whose events the
        // test delivers (`FakeHost.pump()`). Test support only: no product depends on it.
        .target(
            name: "AgentHostRunLogFake",
            dependencies: [.product(name: "CAgentHostPlugin", package: "plugin-sdk")],
            path: "Tests/AgentHostRunLogFake",
            swiftSettings: strictSettings
        ),
        // The Swift plugin SDK's run log wrapper: event dispatch by kind, box lifetimes.
        .testTarget(
            name: "AgentHostPluginSDKTests",
            dependencies: [.product(name: "AgentHostPluginSDK", package: "plugin-sdk"), "AgentHostRunLogFake", .product(name: "CAgentHostPlugin", package: "plugin-sdk")],
            swiftSettings: strictSettings
        ),
        // The example plugins' own tests, through the plugin test kit (no server): what plugin authors would write.
        .testTarget(
            name: "ExamplePluginTests",
            dependencies: [.product(name: "AgentHostPluginTestKit", package: "plugin-sdk")],
            swiftSettings: strictSettings
        ),
        // The settings catalog: both sources, their checks, help, and the README's table.
        .testTarget(
            name: "AgentHostSettingsTests",
            dependencies: ["AgentHostSettings", "AgentHostCore", "AgentHostPlugins", "AgentHostRunLog", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        // The scaffold's rules and its output against the committed plugin-sdk/examples.
        .testTarget(
            name: "AgentHostScaffoldTests",
            dependencies: ["AgentHostScaffold"],
            swiftSettings: strictSettings
        ),
        // The supervisor's pure parts (restart backoff, merged admin answers, exit causes) without processes.
        .testTarget(
            name: "AgentHostWorkersTests",
            dependencies: ["AgentHostWorkers", "AgentHostCore"],
            swiftSettings: strictSettings
        ),
        // The run log's backends and service without a server: temp dirs, an injected clock.
        .testTarget(
            name: "AgentHostRunLogTests",
            dependencies: [
                "AgentHostCore",
                "AgentHostRunLog",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The agent SDK's state (registry, runs, frames) without a host: deterministic, no sockets, no sleeps.
        .testTarget(
            name: "AgentHostAgentSDKTests",
            dependencies: [.product(name: "AgentHostAgentSDK", package: "plugin-sdk"), "AgentHostRunLogFake", .product(name: "CAgentHostPlugin", package: "plugin-sdk")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AgentHostIntegrationTests",
            dependencies: [
                "AgentHostClientSupport",
                "AgentHostCore",
                "AgentHostPlugins",
                "AgentHostAuth",
                "AgentHostRunLog",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // C plugin fixtures, compiled by the tests themselves (one per failure mode).
            exclude: ["Fixtures"],
            swiftSettings: strictSettings
        ),
    ]
)
