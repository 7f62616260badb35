import Foundation
import Glibc
import Testing

/// The built `agenthost` binary with the built example plugins, as the README runs them.
@Suite("agenthost process", .serialized)
struct ServerProcessTests {
    /// A plugin directory holding the .so files `swift build` made.
    static func builtPluginDirectory() throws -> String {
        let directory = try PluginFixtures.makeDirectory()
        for name in ["libagenthost-echo.so", "libagenthost-wordstream.so"] {
            try FileManager.default.copyItem(atPath: try ServerProcess.product(name), toPath: "\(directory)/\(name)")
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(directory)/\(name)")
        }
        return directory
    }

    @Test func printsTheListeningLineAndShutsDownGracefullyOnSIGTERM() async throws {
        let server = try await ServerProcess.start(arguments: ["--plugins", try Self.builtPluginDirectory()])
        #expect(server.listeningLine == "agenthost listening on ws://127.0.0.1:\(server.port)")
        let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        try await client.sendText("before shutdown")
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "before shutdown")

        server.signal(SIGTERM)
        let close = try await withTimeout { try await client.readMessageOrClose() }
        #expect(close.closeCode == 1001)
        try await client.sendClose(code: 1001)
        let (status, log) = try await server.waitForExit()
        #expect(status == 0, "\(log)")
        #expect(log.contains("shutting down"))
    }

    /// A server with nothing to serve still listens (a SIGHUP may bring its plugins), but says so first.
    @Test(arguments: ["missing", "refused"])
    func saysWhenItServesNoPluginRoute(case kind: String) async throws {
        var directory = try PluginFixtures.makeDirectory()
        if kind == "missing" {
            directory += "/nowhere"
        } else {
            try await PluginFixtures.compileFixture("instance_create_fails", into: directory)
        }
        let server = try await ServerProcess.start(arguments: ["--plugins", directory])
        server.signal(SIGTERM)
        let (status, log) = try await server.waitForExit()
        #expect(status == 0, "\(log)")
        let lines = log.split(separator: "\n")
        let warningLine = try #require(lines.firstIndex { $0.contains("serving no plugin route") })
        let listeningLine = try #require(lines.firstIndex { $0.hasSuffix("listening") })
        #expect(warningLine < listeningLine)  // said before the server says it listens
        let warning = lines[warningLine]
        #expect(warning.contains(kind == "missing" ? "it does not exist" : "all 1 plugin file(s) in \(directory) were refused"),
                "\(warning)")
    }

    @Test func dropsClientsThatIgnoreTheCloseAtTheShutdownDeadline() async throws {
        let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
        try Data(#"{"shutdown_timeout_ms": 300}"#.utf8).write(to: URL(fileURLWithPath: config))
        let server = try await ServerProcess.start(arguments: ["--plugins", try Self.builtPluginDirectory(), "--config", config])
        let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        try await client.sendText("here")
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "here")
        server.signal(SIGINT)
        #expect(try await withTimeout { try await client.readMessageOrClose() }.closeCode == 1001)
        // We never answer the close: the server must still exit, soon after its deadline.
        let started = Date()
        let (status, log) = try await server.waitForExit()
        #expect(status == 0, "\(log)")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(log.contains("shutdown deadline passed"))
    }

    @Test func servesTheSwiftPluginBuiltBySwiftPM() async throws {
        let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
        try Data(#"{"plugin_config": {"wordstream": {"delay_ms": 1}}}"#.utf8).write(to: URL(fileURLWithPath: config))
        let server = try await ServerProcess.start(arguments: ["--plugins", try Self.builtPluginDirectory(), "--config", config])
        let client = try await RawWebSocketClient.connect(port: server.port, path: "/wordstream")
        try await client.sendText("stream this")
        var chunks: [String] = []
        while true {
            let frame = try await withTimeout { try await client.readMessageOrClose() }
            if frame.text.contains(#""type":"completion""#) { break }
            chunks.append(frame.text)
        }
        #expect(chunks == [
            #"{"type":"message_chunk","data":{"content":"You ","source":"wordstream"}}"#,
            #"{"type":"message_chunk","data":{"content":"said: ","source":"wordstream"}}"#,
            #"{"type":"message_chunk","data":{"content":"stream ","source":"wordstream"}}"#,
            #"{"type":"message_chunk","data":{"content":"this","source":"wordstream"}}"#,
        ])
        await client.close()
        server.signal(SIGTERM)
        _ = try await server.waitForExit()
    }

    @Test(arguments: [
        (#"{"listen": "127.0.0.1:0", "websocket": {"max_frame_size": "big", "pings": 3}}"#,
         "websocket.max_frame_size must be a whole number"),
        (#"{"websocket": {"pings": 3}}"#, "unknown key(s): websocket.pings"),
        (#"{"max_header_size": true}"#, "max_header_size must be a whole number"),
        (#"{"watch": 1}"#, "watch must be true or false"),
        (#"{"routes": {"/echo": {"access": "public"}}}"#, "need an 'auth' section"),
        (#"{"auth": {"hmac_secret_file": "/nonexistent"}}"#, "cannot read /nonexistent"),
        (#"{"auth": {"jwks_file": "/nonexistent", "jwks_rsa_algorithm": "RS999"}}"#, "jwks_rsa_algorithm must be one of"),
        ("[1, 2", "is not valid JSON"),
        (#"{"routes": {"/echo/": {"allowed_origins": []}}}"#, "routes./echo/: no request can match it"),
        (#"{"routes": {"/Echo": {"allowed_origins": []}, "/echo": {"allowed_origins": []}}}"#,
         "differ only in letter case"),
        (#"{"run_log": {"max_bytes_per_log": 10}}"#, "run_log.max_bytes_per_log must be a whole number from 1024"),
        (#"{"run_log": {"keep": 3}}"#, "unknown key(s): run_log.keep"),
        (#"{"run_log": {"flush_interval_ms": 0}}"#, "run_log.flush_interval_ms must be a whole number from 1 to 100"),
        (#"{"run_log": {"max_ended_bytes_per_owner": 2097152, "max_bytes_per_log": 4194304}}"#,
         "run_log.max_ended_bytes_per_owner (2097152) must be at least run_log.max_bytes_per_log (4194304)"),
        (#"{"state_dir": ""}"#, "state_dir must be a non-empty path"),
    ])
    func refusesABadConfigFileWithAClearMessage(content: String, message: String) async throws {
        let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
        try Data(content.utf8).write(to: URL(fileURLWithPath: config))
        let (status, log) = try await ServerProcess.runToExit(arguments: ["serve", "--config", config])
        #expect(status != 0)
        #expect(log.contains(message), "\(log)")
    }
}
