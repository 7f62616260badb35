// swift-tools-version:6.1
import PackageDescription

// A Swift plugin (async/await) as its own package, outside the AgentHost repository: it depends on the plugin SDK
// package alone. Where the SDK is: the plugin-sdk directory of an AgentHost checkout (set AGENTHOST_PLUGIN_SDK to
// its path; the default is this example's place inside plugin-sdk/examples).
let sdk = Context.environment["AGENTHOST_PLUGIN_SDK"] ?? "\(Context.packageDirectory)/../.."

let package = Package(
    name: "async-shout",
    products: [
        // `swift build -c release --product async-shout` writes .build/release/libasync-shout.so. `type: .dynamic` is what
        // makes a .so: without it `--product` builds a static library and no plugin.
        .library(name: "async-shout", type: .dynamic, targets: ["AsyncShout"]),
    ],
    dependencies: [.package(path: sdk)],
    targets: [
        .target(
            name: "AsyncShout",
            dependencies: [
                .product(name: "AgentHostPluginSDK", package: "plugin-sdk"),
                .product(name: "CAgentHostPlugin", package: "plugin-sdk"),  // the entry function's C types
            ],
            path: "Sources",
            // Bind its own symbols first, and export the entry symbol alone.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-Bsymbolic", "-Xlinker", "--version-script=\(sdk)/plugin-exports.map"])]
        ),
    ]
)
