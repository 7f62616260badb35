// swift-tools-version:6.1
import PackageDescription

// async-shout: an AgentHost plugin, a project of its own that depends on the plugin SDK package alone.
// Where the SDK is: the plugin-sdk directory of an AgentHost checkout (AGENTHOST_PLUGIN_SDK overrides the
// path below). Its package identity is that directory's name: "plugin-sdk".
let sdk = Context.environment["AGENTHOST_PLUGIN_SDK"] ?? "\(Context.packageDirectory)/../.."

let package = Package(
    name: "async-shout",
    products: [
        // `swift build -c release --product async-shout` writes .build/release/libasync-shout.so, the file to
        // install. `type: .dynamic` is what makes a .so.
        .library(name: "async-shout", type: .dynamic, targets: ["AsyncShout"]),
    ],
    dependencies: [.package(path: sdk)],
    targets: [
        .target(
            name: "AsyncShout",
            dependencies: [
                .product(name: "AgentHostPluginSDK", package: "plugin-sdk"),
                .product(name: "CAgentHostPlugin", package: "plugin-sdk"),
            ],
            // Bind the plugin's own symbols first, and export its entry symbol alone.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-Bsymbolic", "-Xlinker", "--version-script=\(sdk)/plugin-exports.map"])]
        ),
        // Drives the plugin in-process with the SDK's test kit: no server.
        .testTarget(
            name: "AsyncShoutTests",
            dependencies: [
                "AsyncShout",
                .product(name: "AgentHostPluginTestKit", package: "plugin-sdk"),
            ]
        ),
    ]
)
