// swift-tools-version:6.1
import PackageDescription

// A C plugin as its own package, outside the AgentHost repository: it depends on the plugin SDK package alone.
// Where the SDK is: the plugin-sdk directory of an AgentHost checkout (set AGENTHOST_PLUGIN_SDK to its path; the
// default is this example's place inside plugin-sdk/examples).
let sdk = Context.environment["AGENTHOST_PLUGIN_SDK"] ?? "\(Context.packageDirectory)/../.."

let package = Package(
    name: "c-shout",
    products: [
        // `swift build -c release --product c-shout` writes .build/release/libc-shout.so: the file to install.
        .library(name: "c-shout", type: .dynamic, targets: ["CShout"]),
    ],
    dependencies: [.package(path: sdk)],
    targets: [
        .target(
            name: "CShout",
            dependencies: [.product(name: "CAgentHostPlugin", package: "plugin-sdk")],
            path: "Sources",
            publicHeadersPath: ".",  // a plugin exports no headers: only its entry symbol
            // Bind its own symbols first, and export the entry symbol alone.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-Bsymbolic", "-Xlinker", "--version-script=\(sdk)/plugin-exports.map"])]
        ),
    ]
)
