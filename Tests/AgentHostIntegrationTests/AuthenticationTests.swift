import AgentHostAuth
import AgentHostCore
import AgentHostPlugins
import Foundation
import Glibc
import Testing

/// Authentication and authorization through the real server: refusals happen before the upgrade with 401/403 and
/// a JSON body, the plugin never hears of them, and the identity of accepted connections reaches the plugin.
@Suite("Authentication")
struct AuthenticationTests {
    static func withAuthServer(queryTokens: Bool = false,
                               _ body: (TestServer, @escaping () -> [String]) async throws -> Void) async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("lifecycle_recorder", into: directory)
        let authenticator = try await TokenAuthenticatorTests.hmacAuthenticator { $0.allowQueryToken = queryTokens }
        try await TestServer.with(pluginDirectory: directory, configure: {
            $0.authenticator = authenticator
            $0.routePolicies["/recorder"] = RoutePolicy(access: .scopes(["agents:run"]))
        }) { server in
            let plugin = try #require(server.loaded.first)
            try await body(server) { ((try? plugin.recordedLines()) ?? []).filter { $0.hasPrefix("open") } }
        }
    }

    static func token(claims change: [String: Any] = [:]) throws -> String {
        var claims = TokenAuthenticatorTests.goodClaims
        for (key, value) in change { claims[key] = value }
        return try TokenAuthenticatorTests.token(claims: claims)
    }

    @Test func refusesMissingBadAndUnderScopedCredentialsBeforeTheUpgrade() async throws {
        try await Self.withAuthServer { server, opens in
            let cases: [(String, [String], Int, String)] = [
                ("missing", [], 401, "this route needs credentials"),
                ("malformed", ["Authorization: Bearer not.a.jwt"], 401, "malformed token"),
                ("other scheme", ["Authorization: Basic YWxpY2U6cHc="], 401, "must be 'Bearer <token>'"),
                ("two credentials", ["Authorization: Bearer \(try Self.token())", "Authorization: Bearer ak_other"], 401,
                 "more than one Authorization header"),
                ("expired", ["Authorization: Bearer \(try Self.token(claims: ["exp": TokenAuthenticatorTests.now - 600]))"],
                 401, "token expired"),
                ("not yet valid", ["Authorization: Bearer \(try Self.token(claims: ["nbf": TokenAuthenticatorTests.now + 600]))"],
                 401, "token not valid yet"),
                ("wrong issuer", ["Authorization: Bearer \(try Self.token(claims: ["iss": "https://evil.test"]))"],
                 401, "token issuer is not https://issuer.test"),
                ("wrong audience", ["Authorization: Bearer \(try Self.token(claims: ["aud": "elsewhere"]))"],
                 401, "token audience does not include agenthost"),
                ("wrong algorithm", ["Authorization: Bearer \(try TokenAuthenticatorTests.token(header: ["alg": "HS384"], claims: TokenAuthenticatorTests.goodClaims, hash: "HS384"))"],
                 401, "token algorithm HS384 is not accepted"),
                ("alg none", ["Authorization: Bearer \(try TokenAuthenticatorTests.token(header: ["alg": "none"], claims: TokenAuthenticatorTests.goodClaims, sign: false))"],
                 401, "token algorithm none is not accepted"),
                ("unknown API key", ["Authorization: Bearer ak_not_a_key"], 401, "neither a valid JWT nor a known API key"),
                ("wrong scope", ["Authorization: Bearer \(try Self.token(claims: ["scope": "agents:read"]))"],
                 403, "missing scope(s): agents:run"),
            ]
            let bystander = try await RawWebSocketClient.connect(
                port: server.port, path: "/recorder", extraHeaders: ["Authorization: Bearer \(try Self.token())"])
            for (name, headers, status, message) in cases {
                let client = try await RawWebSocketClient.connectTCP(port: server.port)
                #expect(try await withTimeout { try await client.handshake(path: "/recorder", extraHeaders: headers) } == status,
                        "\(name)")
                let body = try await withTimeout { try await client.readToEnd() }
                #expect(body.contains(#""error":"#) && body.contains(message), "\(name): \(body)")
                if status == 401 { #expect(client.handshakeResponse.lowercased().contains("www-authenticate: bearer")) }
            }
            #expect(opens().count == 1, "no refused attempt reached the plugin, only the bystander")
            try await bystander.sendText("still served")
            #expect(try await withTimeout { try await bystander.readMessageOrClose() }.text == "still served")
        }
    }

    @Test func handsTheIdentityToThePlugin() async throws {
        try await Self.withAuthServer { server, opens in
            let client = try await RawWebSocketClient.connect(
                port: server.port, path: "/recorder", extraHeaders: ["Authorization: Bearer \(try Self.token())"])
            try await client.sendText("hi")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "hi")
            #expect(opens() == ["open route=/recorder target=/recorder sub=alice scopes=agents:run agents:read protocol="])
        }
    }

    @Test func browsersSendTheTokenAsASubprotocolAndTheServerSelectsAnother() async throws {
        try await Self.withAuthServer { server, opens in
            let offer = "Sec-WebSocket-Protocol: agenthost.v1, bearer.\(try Self.token())"
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/recorder", extraHeaders: [offer])
            #expect(client.handshakeResponse.lowercased().contains("sec-websocket-protocol: agenthost.v1"))
            #expect(!client.handshakeResponse.contains("bearer."))
            #expect(await eventually { opens().first?.hasSuffix("protocol=agenthost.v1") == true })
        }
    }

    /// The token entry is never selected: before, an offer of the token alone got it back in the 101 (where proxies
    /// log it) and the plugin was handed it as its subprotocol.
    @Test func aTokenOfferedAsTheOnlySubprotocolIsNeitherEchoedNorHandedOn() async throws {
        try await Self.withAuthServer { server, opens in
            let token = try Self.token()
            let client = try await RawWebSocketClient.connectTCP(port: server.port)
            let status = try await withTimeout {
                try await client.handshake(path: "/recorder", extraHeaders: ["Sec-WebSocket-Protocol: bearer.\(token)"])
            }
            #expect(status == 400)
            let body = try await withTimeout { try await client.readToEnd() }
            #expect(!client.handshakeResponse.contains(token) && !body.contains(token))
            #expect(body.contains("offer a subprotocol (an HTTP token) beside"), "\(body)")
            // Wrapped, spaced or capitalised, the token entry is still never selected.
            for offer in [#""bearer.\#(token)", chat"#, "(bearer.\(token)), chat", "Bearer.\(token), chat",
                          "bearer\t.\(token), chat", #""bearer.\#(token)""#] {
                let wrapped = try await RawWebSocketClient.connectTCP(port: server.port)
                let answer = try await withTimeout {
                    try await wrapped.handshake(path: "/recorder", extraHeaders: [
                        "Authorization: Bearer \(token)", "Sec-WebSocket-Protocol: \(offer)",
                    ])
                }
                #expect(!wrapped.handshakeResponse.contains(token), "\(offer)")
                if answer == 101 {
                    #expect(wrapped.handshakeResponse.lowercased().contains("sec-websocket-protocol: chat"), "\(offer)")
                }
                await wrapped.close()
            }
            #expect(await eventually { opens().allSatisfy { !$0.contains(token) } })
        }
    }

    /// `/probe/secret` needs a scope the client lacks, the rest of `/probe/*` is public. Before, every other spelling
    /// of the secret path reached the pattern's plugin under the public policy.
    @Test func otherSpellingsOfAProtectedPathDoNotGetThePatternsPolicy() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compile(source: "\(PluginFixtures.fixtureDirectory)/lifecycle_recorder.c",
                                         into: directory, as: "probe.so", defines: [#"RECORDER_ROUTE="/probe/*""#])
        let authenticator = try await TokenAuthenticatorTests.hmacAuthenticator()
        try await TestServer.with(pluginDirectory: directory, configure: {
            $0.authenticator = authenticator
            $0.routePolicies["/probe/secret"] = RoutePolicy(access: .scopes(["admin"]))
            $0.routePolicies["/probe/*"] = RoutePolicy(access: .open)
        }) { server in
            let token = "Authorization: Bearer \(try Self.token())"
            func status(_ path: String) async throws -> Int {
                let client = try await RawWebSocketClient.connectTCP(port: server.port)
                defer { Task { await client.close() } }
                return try await withTimeout { try await client.handshake(path: path, extraHeaders: [token]) }
            }
            #expect(try await status("/probe/open") == 101)
            #expect(try await status("/probe/secret") == 403)
            for path in ["/probe/Secret", "/probe/SECRET", "/Probe/open", "/probe/secret/", "/probe//secret", "/probe/%73ecret", "/probe/./secret", "/probe/x/../secret",
                         "/probe/secret%00", "/probe/secret%2F", "/probe/secret#x", "/probe/secret;x", "/probe\\secret", "/probe/%2e%2e/secret"] {
                #expect(try await status(path) == 400, "\(path)")
            }
            // Percent-encoding of what must be encoded is fine.
            #expect(try await status("/probe/a%20b") == 101)
        }
    }

    @Test func queryTokensWorkWhenEnabledAndNeverReachThePlugin() async throws {
        try await Self.withAuthServer(queryTokens: true) { server, opens in
            let client = try await RawWebSocketClient.connect(
                port: server.port, path: "/recorder?run=7&token=\(try Self.token())")
            try await client.sendText("x")
            _ = try await withTimeout { try await client.readMessageOrClose() }
            let line = try #require(opens().first)
            #expect(line.contains("target=/recorder?run=7 "))
            #expect(!line.contains("token"))
        }
    }

    @Test func mintsATokenTheServerAccepts() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try Data(TokenAuthenticatorTests.secret.utf8).write(to: URL(fileURLWithPath: "\(directory)/secret"))
        try await PluginFixtures.compileFixture("lifecycle_recorder", into: directory)
        let config = "\(directory)/agenthost.json"
        try Data("""
            {"auth": {"hmac_secret_file": "\(directory)/secret", "issuer": "dev", "audience": "agenthost"},
             "routes": {"/recorder": {"scopes": ["agents:run"]}}}
            """.utf8).write(to: URL(fileURLWithPath: config))
        let mint = Process()
        mint.executableURL = URL(fileURLWithPath: try ServerProcess.product("agenthost"))
        mint.arguments = ["token", "--config", config, "--subject", "dev-user", "--scope", "agents:run", "--lifetime", "60"]
        let output = Pipe()
        mint.standardOutput = output
        try mint.run()
        let token = try await blocking {
            mint.waitUntilExit()
            return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(mint.terminationStatus == 0)
        #expect(token.split(separator: ".").count == 3)

        let server = try await ServerProcess.start(arguments: ["--plugins", directory, "--config", config])
        defer { server.signal(SIGKILL) }
        let refused = try await RawWebSocketClient.connectTCP(port: server.port)
        #expect(try await withTimeout { try await refused.handshake(path: "/recorder") } == 401)
        let client = try await RawWebSocketClient.connect(port: server.port, path: "/recorder",
                                                          extraHeaders: ["Authorization: Bearer \(token)"])
        try await client.sendText("minted")
        #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "minted")
    }
}
