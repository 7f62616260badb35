import AgentHostCore
import AgentHostPlugins
import Foundation
import Glibc
import Testing

/// Any C-ABI language: the Rust example (Plugins/rust-echo, no crates, the ABI declared by hand and pinned to the
/// header's layout at compile time) built with cargo and served by the real binary.
@Suite("Rust plugin", .serialized)
struct RustPluginTests {
    /// cargo from PATH, or where rustup puts it.
    static func cargo() throws -> String {
        let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/cargo" }
            + [NSHomeDirectory() + "/.cargo/bin/cargo"]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw PluginFixtures.CompileError(description: "cargo not found (.ci/run installs it: apt-get install cargo)")
        }
        return found
    }

    /// Builds the plugin (offline: it has no dependencies) into a private target directory; returns the .so.
    static func build() async throws -> String {
        let cargo = try Self.cargo()
        let target = try PluginFixtures.makeDirectory()
        let manifest = PluginFixtures.repositoryRoot.appendingPathComponent("Plugins/rust-echo/Cargo.toml").path
        try await blocking {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: cargo)
            process.arguments = ["build", "--release", "--offline", "--manifest-path", manifest, "--target-dir", target]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = Pipe()
            try process.run()
            let log = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw PluginFixtures.CompileError(description: "cargo build failed: \(String(decoding: log, as: UTF8.self))")
            }
        }
        return "\(target)/release/librust_echo.so"
    }

    @Test func aRustPluginServesThroughTheCABI() async throws {
        let built = try await Self.build()
        let directory = try PluginFixtures.makeDirectory()
        try FileManager.default.copyItem(atPath: built, toPath: "\(directory)/rust-echo.so")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(directory)/rust-echo.so")
        let server = try await ServerProcess.start(arguments: ["--plugins", directory])
        defer { server.signal(SIGKILL) }
        let client = try await RawWebSocketClient.connect(port: server.port, path: "/rust-echo")
        try await client.sendText("from rust")
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "from rust")
        try await client.sendBinary([1, 2, 3])
        #expect(try await withTimeout { try await client.readMessageOrClose() }.payload == [1, 2, 3])
        await client.close()
        let (_, metrics) = try await server.get("/metrics", headers: [ServerProcess.adminHeader])
        #expect(metrics.contains(#"agenthost_plugin_rust_echo_messages_total{plugin="rust-echo"} 2"#), "\(metrics)")
        #expect(server.logText.contains("rust-echo on AgentHost \(AgentHostVersion.current) (ABI 1.2)"))
    }
}
