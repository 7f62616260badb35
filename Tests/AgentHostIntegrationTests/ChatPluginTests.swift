import AgentHostPlugins
import Foundation
import Glibc
import Testing

/// The chat example plugin (Plugins/chat) in the built `agenthost`: the ABI 1.2 additions through the real server.
@Suite("Chat example plugin", .serialized)
struct ChatPluginTests {
    /// A server on a directory holding the chat plugin, with `config` as its plugin_config.
    static func start(config: String, plugin: String? = nil) async throws -> (ServerProcess, String) {
        let directory = try PluginFixtures.makeDirectory()
        let file = "\(directory)/chat.so"
        if let plugin {
            try FileManager.default.copyItem(atPath: plugin, toPath: file)
        } else {
            try FileManager.default.copyItem(atPath: try ServerProcess.product("libagenthost-chat.so"), toPath: file)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file)
        let configFile = try PluginFixtures.makeDirectory() + "/agenthost.json"
        try Data(#"{"plugin_config": {"chat": \#(config)}}"#.utf8).write(to: URL(fileURLWithPath: configFile))
        let server = try await ServerProcess.start(arguments: ["--plugins", directory, "--config", configFile])
        return (server, directory)
    }

    /// The next frame's JSON, skipping presence and join/leave notices unless asked for.
    static func next(_ client: RawWebSocketClient, skipping: Set<String> = ["presence", "joined", "left"])
        async throws -> [String: Any]
    {
        while true {
            let frame = try await withTimeout { try await client.readMessageOrClose() }
            guard let object = try JSONSerialization.jsonObject(with: Data(frame.text.utf8)) as? [String: Any] else {
                throw PluginFixtures.CompileError(description: "not a JSON object: \(frame.text)")
            }
            if let type = object["type"] as? String, skipping.contains(type) { continue }
            return object
        }
    }

    @Test func relaysMessagesWithinARoomOnly() async throws {
        let (server, _) = try await Self.start(config: #"{"presence_interval_ms": 0}"#)
        defer { server.signal(SIGKILL) }
        let alice = try await RawWebSocketClient.connect(port: server.port, path: "/chat?room=blue")
        let bob = try await RawWebSocketClient.connect(port: server.port, path: "/chat?room=blue")
        let carol = try await RawWebSocketClient.connect(port: server.port, path: "/chat?room=red")
        #expect(try await Self.next(alice, skipping: []).description.contains("joined"))
        let joined = try await Self.next(alice, skipping: [])  // bob
        #expect(joined["type"] as? String == "joined" && joined["members"] as? Int == 2)
        try await alice.sendText("hi \"bob\"")
        for member in [alice, bob] {
            let message = try await Self.next(member)
            #expect(message["text"] as? String == "hi \"bob\"")
        }
        try await carol.sendText("red only")
        #expect(try await Self.next(carol)["text"] as? String == "red only")
        try await bob.sendText("blue again")
        #expect(try await Self.next(alice)["text"] as? String == "blue again")  // carol's never reached blue
        // The plugin's own metrics, at the host's /metrics. The sender's loop counts after the others may have
        // received the message: read until the counts are in.
        let expected = [
            #"agenthost_plugin_chat_messages_total{plugin="chat",kind="relayed"} 3"#,
            #"agenthost_plugin_chat_members{plugin="chat"} 3"#, #"agenthost_plugin_chat_rooms{plugin="chat"} 2"#,
            #"agenthost_plugin_chat_message_bytes_count{plugin="chat"} 3"#,
        ]
        var metrics = ""
        #expect(await eventuallyAsync {
            metrics = (try? await server.get("/metrics", headers: [ServerProcess.adminHeader]).body) ?? ""
            return expected.allSatisfy(metrics.contains)
        }, "\(metrics)")
        for client in [alice, bob, carol] { await client.close() }
    }

    /// on_upgrade: a bad room is a 400 with the plugin's reason before any connection opens; chat.v1 is selected.
    @Test func refusesABadRoomBeforeTheUpgradeAndSelectsItsSubprotocol() async throws {
        let (server, _) = try await Self.start(config: #"{"presence_interval_ms": 0}"#)
        defer { server.signal(SIGKILL) }
        let refused = try await RawWebSocketClient.connectTCP(port: server.port)
        #expect(try await refused.handshake(path: "/chat?room=No%20Spaces") == 400)
        #expect(try await refused.readToEnd().contains("room must be 1-32 characters of [a-z0-9-]"))
        let accepted = try await RawWebSocketClient.connectTCP(port: server.port)
        #expect(try await accepted.handshake(path: "/chat?room=ok", extraHeaders: ["Sec-WebSocket-Protocol: v0, chat.v1"]) == 101)
        #expect(accepted.handshakeResponse.lowercased().contains("sec-websocket-protocol: chat.v1"))
        await accepted.close()
        let (_, metrics) = try await server.get("/metrics", headers: [ServerProcess.adminHeader])
        #expect(metrics.contains(#"agenthost_refusals_total{reason="endpoint"} 1"#), "\(metrics)")
    }

    /// The instance timer: every member hears its room's size, again and again (the timer is re-armed from
    /// on_event with conn 0).
    @Test func broadcastsPresenceFromAnInstanceTimer() async throws {
        let (server, _) = try await Self.start(config: #"{"presence_interval_ms": 50}"#)
        defer { server.signal(SIGKILL) }
        let member = try await RawWebSocketClient.connect(port: server.port, path: "/chat?room=quiet")
        for _ in 0..<3 {
            let presence = try await Self.next(member, skipping: ["joined"])
            #expect(presence["type"] as? String == "presence" && presence["members"] as? Int == 1)
        }
        await member.close()
    }

    /// Flow control: past its allowance a member is not read until the window ends; its messages are delayed, in
    /// order, never dropped, and the slowed notice comes before the first held one.
    @Test func slowModePausesReadingAndLosesNothing() async throws {
        let (server, _) = try await Self.start(
            config: #"{"presence_interval_ms": 0, "slow_mode_messages": 3, "slow_mode_window_ms": 1000}"#)
        defer { server.signal(SIGKILL) }
        let member = try await RawWebSocketClient.connect(port: server.port, path: "/chat?room=fast")
        for index in 1...7 { try await member.sendText("m\(index)") }
        var seen: [String] = []
        while seen.filter({ $0.hasPrefix("m") }).count < 7 {
            let frame = try await Self.next(member)
            seen.append((frame["text"] as? String) ?? (frame["type"] as? String ?? "?"))
        }
        #expect(seen == ["m1", "m2", "m3", "slowed", "m4", "m5", "m6", "slowed", "m7"])
        var metrics = ""
        #expect(await eventuallyAsync {
            metrics = (try? await server.get("/metrics", headers: [ServerProcess.adminHeader]).body) ?? ""
            return metrics.contains(#"agenthost_plugin_chat_slowed_total{plugin="chat"} 2"#)
        }, "\(metrics)")
        await member.close()
    }

    /// The drain notice: a new version takes over, and the old one's members are told before the drain deadline.
    @Test func tellsMembersToReconnectWhenANewVersionTakesOver() async throws {
        let build = try PluginFixtures.makeDirectory()
        let source = PluginFixtures.repositoryRoot.appendingPathComponent("Plugins/chat/chat.c").path
        let v1 = try await PluginFixtures.compile(source: source, into: build, as: "v1.so",
                                                  defines: ["CHAT_VERSION=\"1.0.0\""])
        let (server, directory) = try await Self.start(config: #"{"presence_interval_ms": 0}"#, plugin: v1)
        defer { server.signal(SIGKILL) }
        let member = try await RawWebSocketClient.connect(port: server.port, path: "/chat")
        let v2 = try await PluginFixtures.compile(source: source, into: build, as: "v2.so",
                                                  defines: ["CHAT_VERSION=\"2.0.0\""])
        guard rename(v2, "\(directory)/chat.so") == 0 else { throw PluginFixtures.CompileError(description: "rename") }
        server.signal(SIGHUP)
        let notice = try await Self.next(member)
        #expect(notice["type"] as? String == "draining" && notice["version"] as? String == "1.0.0")
        #expect(try await server.plugins().contains { $0.version == "2.0.0" && $0.state == "serving" })
        await member.close()
    }
}
