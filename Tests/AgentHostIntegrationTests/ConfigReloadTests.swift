import AgentHostPlugins
import Foundation
import Glibc
import Testing

/// SIGHUP re-reads the config file: new connections get what it says, open ones keep what they started with, a
/// plugin whose config changed gets a new generation, and a bad file changes nothing.
@Suite("Config reload", .serialized)
struct ConfigReloadTests {
    static let alice = "Authorization: Bearer ak_runlog_alice_0123456789"
    static let bob = "Authorization: Bearer ak_runlog_bob_0123456789"
    static let aliceKey = #"{"sha256": "f2433b3256de59e6975342de6f602b641b6f644a3108bfc6c0b4fab6dcfb7e3b", "subject": "alice"}"#
    static let bobKey = #"{"sha256": "8feceeb027b34f341b041e6f66811926a18f92b361c61106baaddddec1d94388", "subject": "bob"}"#

    static func write(_ json: String, to path: String) throws {
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// A server with the echo plugin and a config file holding `config`; returns it and the file's path.
    static func startEcho(config json: String, arguments: [String] = []) async throws -> (ServerProcess, String) {
        let plugins = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileEcho(into: plugins)
        let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
        try Self.write(json, to: config)
        let server = try await ServerProcess.start(arguments: ["--plugins", plugins, "--config", config] + arguments)
        return (server, config)
    }

    /// Sends SIGHUP and waits until the server has logged the outcome of the config reload.
    static func reload(_ server: ServerProcess) async throws {
        let before = server.logText.components(separatedBy: "configuration reload").count
        server.signal(SIGHUP)
        #expect(await eventually { server.logText.components(separatedBy: "configuration reload").count > before })
    }

    @Test func aChangedPluginConfigGivesTheRouteANewGeneration() async throws {
        let plugins = try PluginFixtures.makeDirectory()
        let chat = "\(plugins)/chat.so"
        try FileManager.default.copyItem(atPath: try ServerProcess.product("libagenthost-chat.so"), toPath: chat)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: chat)
        let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
        try Self.write(#"{"plugin_config": {"chat": {"presence_interval_ms": 0}}}"#, to: config)
        let server = try await ServerProcess.start(arguments: ["--plugins", plugins, "--config", config])
        defer { server.signal(SIGKILL) }
        let first = try await RawWebSocketClient.connect(port: server.port, path: "/chat")
        #expect(try await ChatPluginTests.next(first, skipping: [])["type"] as? String == "joined")

        try Self.write(#"{"plugin_config": {"chat": {"presence_interval_ms": 50}}}"#, to: config)
        try await Self.reload(server)
        // The generation with the old config is told it drains; the new one serves new members with the new one.
        #expect(try await ChatPluginTests.next(first)["type"] as? String == "draining")
        let listing = try await server.plugins().filter { $0.name == "chat" }
        #expect(Set(listing.map(\.state)) == ["serving", "draining"])
        #expect(Set(listing.compactMap(\.configSHA256)).count == 2)
        #expect(Set(listing.compactMap(\.sha256)).count == 1)  // the same file
        let second = try await RawWebSocketClient.connect(port: server.port, path: "/chat")
        #expect(try await ChatPluginTests.next(second, skipping: ["joined"])["type"] as? String == "presence")
        await first.close()
        await second.close()
    }

    @Test func limitsApplyToNewConnectionsAndABadFileChangesNothing() async throws {
        let (server, config) = try await Self.startEcho(config: #"{"websocket": {"max_message_size": 4096}}"#)
        defer { server.signal(SIGKILL) }
        let before = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        let text = String(repeating: "x", count: 2000)

        try Self.write(#"{"websocket": {"max_frame_size": 10}}"#, to: config)  // below the 125-byte minimum
        try await Self.reload(server)
        #expect(server.logText.contains("configuration reload refused"))
        #expect(server.logText.contains("websocket.max_frame_size must be a whole number from 125"))
        try Self.write(#"{"websocket": {"max_message_size": 4096}, "routes": }"#, to: config)  // not JSON
        try await Self.reload(server)
        let probe = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        try await probe.sendText(text)
        #expect(try await withTimeout { try await probe.readMessageOrClose() }.text == text)
        let over = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        try await over.sendText(String(repeating: "y", count: 5000))  // still 4096: the refused files changed nothing
        #expect(try await withTimeout { try await over.readMessageOrClose() }.closeCode == 1009)

        try Self.write(#"{"websocket": {"max_message_size": 1000}}"#, to: config)
        try await Self.reload(server)
        let after = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        try await after.sendText(text)
        let refused = try await withTimeout { try await after.readMessageOrClose() }
        #expect(refused.closeCode == 1009, "\(refused.opcode) \(refused.payload.count) \(server.logText)")
        try await before.sendText(text)  // opened under the old limit, and keeps it
        #expect(try await withTimeout { try await before.readMessageOrClose() }.text == text)
        await before.close()
        await probe.close()
    }

    @Test func newKeysAndPoliciesApplyToTheNextUpgrade() async throws {
        let (server, config) = try await Self.startEcho(
            config: #"{"access": "authenticated", "auth": {"api_keys": [\#(Self.aliceKey)]}}"#)
        defer { server.signal(SIGKILL) }
        let alice = try await RawWebSocketClient.connect(port: server.port, path: "/echo", extraHeaders: [Self.alice])

        try Self.write(#"{"access": "authenticated", "auth": {"api_keys": [\#(Self.bobKey)]}, "routes": {"/echo": {"allowed_origins": ["https://app.example"]}}}"#,
                       to: config)
        try await Self.reload(server)
        let refused = try await RawWebSocketClient.connectTCP(port: server.port)
        #expect(try await refused.handshake(path: "/echo", extraHeaders: [Self.alice]) == 401)
        let wrongOrigin = try await RawWebSocketClient.connectTCP(port: server.port)
        #expect(try await wrongOrigin.handshake(path: "/echo", extraHeaders: [Self.bob, "Origin: https://evil.example"]) == 403)
        let bob = try await RawWebSocketClient.connect(port: server.port, path: "/echo",
                                                       extraHeaders: [Self.bob, "Origin: https://app.example"])
        try await bob.sendText("bob")
        #expect(try await withTimeout { try await bob.readMessageOrClose() }.text == "bob")
        try await alice.sendText("still here")  // authenticated before the reload: kept
        #expect(try await withTimeout { try await alice.readMessageOrClose() }.text == "still here")
        await alice.close()
        await bob.close()
    }

    /// A plugin refused because it could not start with its config is tried again once the config changes (its
    /// file did not); and a config with several keys reloaded unchanged makes no new generation.
    @Test func aFixedPluginConfigBringsARefusedPluginInAndAnUnchangedOneChangesNothing() async throws {
        let plugins = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("config_gate", into: plugins)
        let chat = "\(plugins)/chat.so"
        try FileManager.default.copyItem(atPath: try ServerProcess.product("libagenthost-chat.so"), toPath: chat)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: chat)
        let config = try PluginFixtures.makeDirectory() + "/agenthost.json"
        let chatConfig = #""chat": {"slow_mode_window_ms": 1000, "presence_interval_ms": 0, "slow_mode_messages": 5, "x": {"b": 1, "a": [1, 2]}}"#
        try Self.write(#"{"plugin_config": {\#(chatConfig)}}"#, to: config)
        let server = try await ServerProcess.start(arguments: ["--plugins", plugins, "--config", config])
        defer { server.signal(SIGKILL) }
        #expect(try await server.plugins().contains { $0.state == "refused" && $0.reason?.contains("needs") == true })

        try Self.write(#"{"plugin_config": {\#(chatConfig), "gate": {"ready":true}}}"#, to: config)
        try await Self.reload(server)
        #expect(await eventuallyAsync { (try? await server.plugins())?.contains { $0.name == "gate" && $0.state == "serving" } == true })
        for _ in 0..<3 { try await Self.reload(server) }
        let chats = try await server.plugins().filter { $0.name == "chat" }
        #expect(chats.map(\.state) == ["serving"], "\(chats)")  // same config, several keys: never a new generation
        let client = try await RawWebSocketClient.connect(port: server.port, path: "/gate")
        try await client.sendText("open")
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "open")
        await client.close()
    }

    /// The command line's flags still win after a reload, and the settings only a restart applies are named.
    @Test func flagsStillWinAndRestartOnlyChangesAreNamed() async throws {
        let (server, config) = try await Self.startEcho(
            config: #"{"log_level": "info", "websocket": {"max_message_size": 4096}}"#,
            arguments: ["--max-message-size", "2000"])
        defer { server.signal(SIGKILL) }

        try Self.write(#"{"log_level": "debug", "workers": 1, "websocket": {"max_message_size": 100000}}"#, to: config)
        try await Self.reload(server)
        #expect(server.logText.contains("configuration reloaded"), "\(server.logText)")
        #expect(server.logText.contains("settings=log_level"), "\(server.logText)")
        let client = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
        try await client.sendText(String(repeating: "x", count: 3000))  // over the flag's 2000, under the file's
        #expect(try await withTimeout { try await client.readMessageOrClose() }.closeCode == 1009)
    }
}
