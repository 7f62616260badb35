import AgentHostClientSupport
import Foundation
import Glibc

/// The `agenthost` binary as a child process, on one event loop, serving the echo plugin at /echo and the bare
/// NIO echo baseline at /_baseline/echo; its CPU time and resident memory are read from /proc.
final class ServerUnderTest {
    static let baselineRoute = "/_baseline/echo"

    let process = Process()
    let port: Int
    /// The admin token the server is started with (admin routes answer nobody without one).
    let adminToken = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
    private let pluginDirectory: String
    private let echoPlugin: String

    /// `extraPlugins`: more plugin files to serve beside the echo plugin (for example an agent route).
    init(binary: String, echoPlugin: String, eventLoops: Int, config: String? = nil, extraArguments: [String] = [],
         extraPlugins: [String] = []) throws
    {
        self.echoPlugin = echoPlugin
        // One directory per server: two servers of one run (a comparison) must not share or remove each other's.
        self.pluginDirectory = NSTemporaryDirectory() + "agenthost-bench-\(getpid())-\(UUID().uuidString)"
        try? FileManager.default.removeItem(atPath: self.pluginDirectory)
        try FileManager.default.createDirectory(atPath: self.pluginDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        for plugin in [echoPlugin] + extraPlugins {
            let installed = "\(self.pluginDirectory)/\(URL(fileURLWithPath: plugin).lastPathComponent)"
            try FileManager.default.copyItem(atPath: plugin, toPath: installed)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: installed)
        }

        self.process.executableURL = URL(fileURLWithPath: binary)
        self.process.arguments = [
            "serve", "--listen", "127.0.0.1:0", "--plugins", self.pluginDirectory, "--event-loops", "\(eventLoops)",
            "--baseline-echo-route", Self.baselineRoute, "--log-level", "warning",
            "--max-frame-size", "\(1 << 20)", "--max-message-size", "\(1 << 20)",
            // All load comes from one address at full speed: lift the per-address and message-rate limits.
            "--max-connections", "0", "--max-connections-per-address", "0", "--max-messages-per-second", "0",
        ] + (config.map { ["--config", $0] } ?? []) + extraArguments
        var environment = ProcessInfo.processInfo.environment
        environment["AGENTHOST_ADMIN_TOKEN"] = self.adminToken
        self.process.environment = environment
        let output = Pipe()
        self.process.standardOutput = output
        try self.process.run()
        var line = [UInt8]()
        while let byte = output.fileHandleForReading.readData(ofLength: 1).first, byte != UInt8(ascii: "\n") {
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            throw BenchError("server did not print its listening line (got '\(text)')")
        }
        self.port = port
    }

    /// Installs the echo plugin with `variant` bytes of padding appended (a new SHA-256: a new version to the host),
    /// the way deploy tools do: write beside, then rename over the live file.
    func deployEchoVariant(_ variant: Int) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: self.echoPlugin))
        bytes.append(Data(count: variant))
        let incoming = "\(self.pluginDirectory)/.incoming"
        try bytes.write(to: URL(fileURLWithPath: incoming))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: incoming)
        guard rename(incoming, "\(self.pluginDirectory)/libagenthost-echo.so") == 0 else {
            throw BenchError("rename failed: \(String(cString: strerror(errno)))")
        }
    }

    /// User plus system CPU time the server has used, in seconds: its worker processes (`--workers`) included.
    var cpuSeconds: Double {
        let pid = self.process.processIdentifier
        // A child belongs to the thread that started it: the supervisor's are spread over its threads.
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let children = threads.flatMap { thread in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { Int32($0) }
        }
        return ([pid] + children).map { ProcessStat(path: "/proc/\($0)/stat")?.cpuSeconds ?? 0 }.reduce(0, +)
    }

    /// Resident set size in bytes.
    var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(self.process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kilobytes * 1024
    }

    func stop() {
        kill(self.process.processIdentifier, SIGTERM)
        self.process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: self.pluginDirectory)
    }
}
