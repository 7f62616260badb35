import AgentHostCore
import AgentHostPlugins
import AgentHostSettings
import Foundation
import NIOCore
import Testing

@Suite struct ServeSettingsTests {
    /// A config file with `content`, resolved with `flags` on top.
    func resolve(file content: String? = nil, flags: [String] = [],
                 environment: [String: String] = [:]) throws -> ServeSettings {
        var path: String?
        if let content {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("agenthost-\(UUID()).json")
            try Data(content.utf8).write(to: file)
            path = file.path
        }
        defer { path.map { try? FileManager.default.removeItem(atPath: $0) } }
        return try ServeSettings.resolve(configFile: path, commandLine: try ServeSettings.parse(commandLine: flags),
                                         environment: environment)
    }

    func refusal(file content: String? = nil, flags: [String] = []) -> String {
        do {
            _ = try self.resolve(file: content, flags: flags)
            return "(accepted)"
        } catch {
            return "\(error)"
        }
    }

    @Test func defaultsComeFromTheConfigurationStructs() throws {
        let settings = try self.resolve()
        #expect(settings.server.host == "127.0.0.1" && settings.server.port == 8080)
        #expect(settings.server.webSocket == WebSocketConfiguration())
        #expect(settings.workers == 1 && settings.eventLoops == nil && settings.watchdog == .seconds(10))
        #expect(settings.pluginManager.drainTimeout == .seconds(30))
    }

    @Test func aFlagWinsOverTheFileAndTheFileOverTheDefault() throws {
        let settings = try self.resolve(
            file: #"{"listen": "0.0.0.0:9000", "websocket": {"max_frame_size": 4096, "ping_interval_ms": 0}, "drain_timeout_ms": 1500}"#,
            flags: ["--max-frame-size", "8192", "--listen=[::1]:0", "--watch", "--drain-timeout-ms", "0"])
        #expect(settings.server.webSocket.maxFrameSize == 8192)
        #expect(settings.server.webSocket.pingInterval == nil)
        #expect(settings.server.host == "::1" && settings.server.port == 0)
        #expect(settings.watch)
        #expect(settings.pluginManager.drainTimeout == .zero)
    }

    @Test func everySettingHasOneKeyAndOneFlag() {
        let keys = ServeSettings.catalog.map(\.key)
        let flags = ServeSettings.catalog.compactMap(\.flag)
        #expect(Set(keys).count == keys.count)
        #expect(Set(flags).count == flags.count)
        // Flags the command itself owns must not be settings.
        #expect(!flags.contains("config") && !flags.contains("help"))
    }

    /// Each setting accepts its default as written by `describe`, from the file and from the command line: the help
    /// shows values the setting takes back.
    @Test func everySettingTakesItsOwnDefaultBack() throws {
        let defaults = ServeSettings()
        for setting in ServeSettings.catalog {
            let shown = setting.describe(defaults)
            guard !["none", "any", "one per core", "(set)"].contains(shown) else { continue }
            let text = shown.replacingOccurrences(of: " (off)", with: "")
            var fromText = ServeSettings()
            try setting.assign(.text(text), to: &fromText)
            #expect(setting.describe(fromText) == shown, "\(setting.key)")
        }
    }

    @Test(arguments: [
        (#"{"websocket": {"max_frame_size": 100}}"#, [String](), "websocket.max_frame_size must be a whole number from 125"),
        ("{}", ["--max-frame-size", "big"], "--max-frame-size must be a whole number from 125"),
        (#"{"watch": 1}"#, [], "watch must be true or false"),
        ("{}", ["--watch=yes"], "--watch must be true or false"),
        (#"{"log_level": "loud"}"#, [], "log_level must be one of trace, debug"),
        ("{}", ["--listen", "localhost"], "--listen must be HOST:PORT"),
        (#"{"state_dir": ""}"#, [], "state_dir must be a non-empty path"),
        (#"{"websocket": 3}"#, [], "websocket must be a JSON object"),
        (#"{"websocket": {"pings": 3}}"#, [], "unknown key(s): websocket.pings"),
        (#"{"listen_on": "x"}"#, [], "unknown key(s): listen_on"),
        (#"{"websocket": {"outbound_low_watermark": 2000000}}"#, [], "outbound_low_watermark (2000000) must not exceed"),
        ("{}", ["--outbound-hard-limit", "1000"], "outbound_high_watermark (1048576) must not exceed"),
        (#"{"tls_cert": "/c.pem"}"#, [], "TLS needs both tls_cert and tls_key"),
        ("{}", ["--tls-client-ca", "/ca.pem"], "tls_client_ca needs tls_cert"),
        (#"{"run_log": {"max_total_bytes": 1048576, "max_bytes_per_log": 4194304}}"#, [],
         "run_log.max_total_bytes (1048576) must be at least run_log.max_bytes_per_log"),
        (#"{"admin_token": 5}"#, [], "admin_token must be a non-empty string"),
    ])
    func refusesABadValueNamingTheKeyOrFlag(file: String, flags: [String], message: String) {
        let refusal = self.refusal(file: file, flags: flags)
        #expect(refusal.contains(message), "\(refusal)")
    }

    @Test(arguments: [
        (["--drain-timeout", "5"], "unknown option '--drain-timeout' (did you mean --drain-timeout-ms?)"),
        (["--admin-token", "secret"], "unknown option '--admin-token'"),
        (["--max-frame-size"], "--max-frame-size needs a value (BYTES)"),
        (["--max-frame-size", "--watch"], "--max-frame-size needs a value"),
        (["stray"], "unexpected argument 'stray'"),
    ])
    func refusesABadCommandLine(flags: [String], message: String) {
        do {
            _ = try ServeSettings.parse(commandLine: flags)
            Issue.record("accepted \(flags)")
        } catch {
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test func theEnvironmentsAdminTokenWinsOverTheFile() throws {
        let settings = try self.resolve(file: #"{"admin_token": "from-file"}"#,
                                        environment: ["AGENTHOST_ADMIN_TOKEN": "from-env"])
        #expect(settings.adminToken == "from-env")
        #expect(try self.resolve(file: #"{"admin_token": "from-file"}"#).adminToken == "from-file")
    }

    @Test func handshakeTimeoutAlsoBoundsPlainRequests() throws {
        let settings = try self.resolve(file: #"{"handshake_timeout_ms": 1234}"#)
        #expect(settings.server.handshakeTimeout == .milliseconds(1234))
        #expect(settings.server.http.requestTimeout == .milliseconds(1234))
    }

    @Test func sectionsKeepTheirChecks() throws {
        let settings = try self.resolve(file: """
            {"auth": {"api_keys": [{"sha256": "\(String(repeating: "a", count: 64))", "subject": "ci"}]},
             "access": "public",
             "routes": {"/agents/*": {"scopes": ["agents"]}},
             "plugin_config": {"echo": {"b": 1, "a": 2}}}
            """)
        #expect(settings.server.defaultRoutePolicy.access == .open)
        #expect(settings.server.routePolicies["/agents/*"]?.access == .scopes(["agents"]))
        #expect(settings.pluginManager.pluginConfigs["echo"] == Array(#"{"a":2,"b":1}"#.utf8))
        #expect(self.refusal(file: #"{"routes": {"/x": {"scopes": ["a"]}}}"#).contains("need an 'auth' section"))
        #expect(self.refusal(file: #"{"auth": {"api_keys": [{"sha256": "zz"}]}}"#)
            .contains("auth.api_keys[0].sha256 must be the key's SHA-256 in hex"))
    }

    @Test func aReloadNamesTheRestartOnlySettingsThatChanged() throws {
        let old = try self.resolve(file: #"{"workers": 2, "websocket": {"max_frame_size": 4096}}"#)
        let new = try self.resolve(file: #"{"workers": 3, "log_level": "debug", "websocket": {"max_frame_size": 8192}}"#)
        #expect(ServeSettings.restartOnlyChanges(from: old, to: new) == ["workers", "log_level"])
        #expect(ServeSettings.restartOnlyChanges(from: old, to: old).isEmpty)
    }

    @Test func helpListsEverySettingWithItsDefault() {
        let help = ServeSettings.helpText
        for setting in ServeSettings.catalog {
            #expect(help.contains("(\(setting.key)"), "\(setting.key)")
            if let option = setting.option { #expect(help.contains(option), "\(option)") }
        }
        #expect(help.contains("--max-frame-size BYTES (websocket.max_frame_size)\n"))
        #expect(help.contains("--workers N (workers; restart)\n"))
        #expect(help.contains("Default: 1048576."))
        #expect(help.split(separator: "\n").allSatisfy { $0.count <= 78 })
    }

    /// The README's settings table is the operator's reference: every key of the catalog has its row.
    @Test func theReadmeDocumentsEverySetting() throws {
        let readme = try String(contentsOfFile: Self.repositoryRoot + "/README.md", encoding: .utf8)
        let missing = ServeSettings.catalog.map(\.key).filter { !readme.contains("| `\($0)` |") }
        #expect(missing.isEmpty, "README.md's settings table has no row for \(missing)")
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }
}
