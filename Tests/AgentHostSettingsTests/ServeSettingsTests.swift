import AgentHostCore
import AgentHostPlugins
import AgentHostRunLog
import AgentHostSettings
import Foundation
import Logging
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
            // The same value as the config file would hold it.
            let json: Any = Int(text).map { NSNumber(value: $0) } ?? (["true": true, "false": false][text] ?? text)
            var fromJSON = ServeSettings()
            try setting.assign(.json(json), to: &fromJSON)
            #expect(setting.describe(fromJSON) == shown, "\(setting.key)")
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
        (#"{"websocket": {"outbound_low_watermark": 0}}"#, [], "websocket.outbound_low_watermark must be a whole number from 1"),
        (#"{"tls_cert": "/c.pem"}"#, [], "TLS needs both tls_cert and tls_key"),
        ("{}", ["--tls-client-ca", "/ca.pem"], "tls_client_ca needs tls_cert"),
        (#"{"run_log": {"max_total_bytes": 1048576, "max_bytes_per_log": 4194304}}"#, [],
         "run_log.max_total_bytes (1048576) must be at least run_log.max_bytes_per_log"),
        (#"{"admin_token": 5}"#, [], "admin_token must be a non-empty string"),
        (#"{"watchdog_ms": 50}"#, [], "watchdog_ms must be 0 (off) or a whole number of milliseconds from 100"),
    ])
    func refusesABadValueNamingTheKeyOrFlag(file: String, flags: [String], message: String) {
        let refusal = self.refusal(file: file, flags: flags)
        #expect(refusal.contains(message), "\(refusal)")
    }

    @Test(arguments: [
        (["--drain-timeout", "5"], "unknown option '--drain-timeout' (did you mean --drain-timeout-ms?)"),
        (["--admin-token", "secret"], "'admin_token' is set in the config file only"),
        (["--max_frame_size", "1"], "did you mean --max-frame-size?"),
        (["--websocket-max-frame-size", "1"], "did you mean --max-frame-size?"),
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

    /// Without a state dir the run log lives in memory: its totals default lower, unless the operator set them
    /// (to any value, the disk default included).
    @Test func runLogTotalsDefaultLowerInMemoryUnlessGiven() throws {
        let memory = try self.resolve(file: "{}").runLog.retention
        #expect(memory.maxTotalBytes == 256 << 20 && memory.maxEndedBytesPerOwner == 32 << 20)
        let chosen = try self.resolve(file: #"{"run_log": {"max_total_bytes": 4294967296}}"#).runLog.retention
        #expect(chosen.maxTotalBytes == 4 << 30 && chosen.maxEndedBytesPerOwner == 32 << 20)
        let disk = try self.resolve(file: #"{"state_dir": "/var/lib/agenthost"}"#).runLog.retention
        #expect(disk.maxTotalBytes == 4 << 30 && disk.maxEndedBytesPerOwner == 512 << 20)
        let bigRuns = try self.resolve(flags: ["--run-log-max-bytes-per-log", "\(1 << 30)"]).runLog.retention
        #expect(bigRuns.maxTotalBytes == 1 << 30)
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

    @Test func aRestartedWorkerKeepsTheRestartOnlySettingsItsSupervisorStartedWith() throws {
        let started = try self.resolve(file: #"{"listen": "127.0.0.1:0", "log_level": "info", "max_connections": 10}"#)
        let accepted = try self.resolve(file: #"{"listen": "0.0.0.0:0", "log_level": "debug", "max_connections": 20}"#)
        let worker = accepted.keepingRestartOnly(from: started)
        #expect(worker.server.host == "127.0.0.1" && worker.logLevel == .info)
        #expect(worker.server.maxConnections == 20)  // a reloadable setting: the accepted file's
        #expect(worker.given.contains("log_level") && worker.given.contains("max_connections"))
        let plain = try self.resolve(file: "{}")
        #expect(!accepted.keepingRestartOnly(from: plain).given.contains("log_level"))
    }

    /// Adding a state dir changes the run log's default totals too; the warning names what the operator changed.
    @Test func aRestartOnlyChangeNamesTheSettingNotItsConsequences() throws {
        let old = try self.resolve(file: "{}")
        let new = try self.resolve(file: #"{"state_dir": "/var/lib/agenthost"}"#)
        #expect(old.runLog.retention.maxTotalBytes != new.runLog.retention.maxTotalBytes)
        #expect(ServeSettings.restartOnlyChanges(from: old, to: new) == ["state_dir"])
    }

    /// A config file that is not a regular file, or is huge, is refused before it is read.
    @Test func aConfigFileMustBeASmallRegularFile() throws {
        for path in ["/dev/zero", FileManager.default.temporaryDirectory.path] {
            do {
                _ = try ServeSettings.resolve(configFile: path, commandLine: [])
                Issue.record("accepted \(path)")
            } catch {
                #expect(error.description.contains("is not a regular file"), "\(error)")
            }
        }
        #expect(self.refusal(file: String(repeating: " ", count: 17 << 20) + "{}").contains("is larger than 16 MiB"))
        #expect(self.refusal(file: #"{"listen": }"#).contains("is not valid JSON"))
    }

    @Test func aReloadNamesTheRestartOnlySettingsThatChanged() throws {
        let old = try self.resolve(file: #"{"workers": 2, "websocket": {"max_frame_size": 4096}}"#)
        let new = try self.resolve(file: #"{"workers": 3, "log_level": "debug", "websocket": {"max_frame_size": 8192}}"#)
        #expect(ServeSettings.restartOnlyChanges(from: old, to: new) == ["workers", "log_level"])
        #expect(ServeSettings.restartOnlyChanges(from: old, to: old).isEmpty)
    }

    @Test(arguments: [
        (["--watchdog", "5"], "did you mean --watchdog-ms?"),
        (["--drain-timeout", "5"], "did you mean --drain-timeout-ms?"),
        (["--watch", "false"], "a switch takes its value after '=': --watch=false"),
        (["--max-connections", "-1"], "--max-connections must be a whole number from 0 to"),
        (["--ping-interval-ms", "2147483648"], "--ping-interval-ms must be a whole number of milliseconds from 0 (off) to 2147483647, got '2147483648'"),
        (["--max-messages-per-second", "1000000001"], "from 0 to 1000000000"),
        (["--event-loops", "0"], "--event-loops must be a whole number from 1 to 1024, got '0'"),
        (["--listen", "::1:0"], "--listen must be HOST:PORT"),
        (["--listen", " 127.0.0.1:0"], "--listen must be HOST:PORT"),
        (["--run-log-max-ended-age-seconds", "9223372036854775807"], "from 1 to 3155760000"),
    ])
    func aCommandLineMistakeIsSaidBeforeAnythingStarts(flags: [String], message: String) {
        do {
            try ServeSettings.check(commandLine: try ServeSettings.parse(commandLine: flags))
            Issue.record("accepted \(flags)")
        } catch {
            #expect(error.description.contains(message), "\(error)")
        }
    }

    /// Large values that fit are accepted; the caps are where a value in nanoseconds or a rate's credit would not.
    @Test func theCapsAcceptWhatFits() throws {
        let settings = try self.resolve(file: """
            {"max_connections": 9223372036854775807, "shutdown_timeout_ms": 2147483647,
             "websocket": {"message_burst": 2147483647, "max_messages_per_second": 1000000000}}
            """)
        #expect(settings.server.maxConnections == Int.max)
        #expect(try self.resolve(flags: ["--listen", "[::1]:0"]).server.host == "::1")
        #expect(settings.server.shutdownTimeout == .milliseconds(2_147_483_647))
        #expect(self.refusal(file: #"{"shutdown_timeout_ms": 2147483648}"#).contains("shutdown_timeout_ms must be"))
        #expect(self.refusal(file: #"{"websocket": {"message_burst": 1e300}}"#).contains("message_burst must be"))
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

    /// The README's reload table puts each setting in the column its catalog entry says: applied by a reload, or
    /// kept until a restart.
    @Test func theReadmesReloadTableAgreesWithTheCatalog() throws {
        let readme = try String(contentsOfFile: Self.repositoryRoot + "/README.md", encoding: .utf8)
        let header = "| applies at the next connection or reload | needs a restart"
        let table = try #require(readme.components(separatedBy: header).dropFirst().first)
        let rows = table.components(separatedBy: "\n\n")[0].split(separator: "\n").dropFirst(2)  // after |---|
        var columns = ["", ""]
        for row in rows {
            let cells = row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
            for (index, cell) in cells.prefix(2).enumerated() { columns[index] += cell + " " }
        }
        for setting in ServeSettings.catalog {
            var names = ["`\(setting.key)`"]
            if setting.key.hasPrefix("websocket.") { names.append("`websocket.*`") }
            if setting.key.hasPrefix("run_log.") { names.append("`run_log`") }
            let column = setting.applies == .onReload ? 0 : 1
            #expect(names.contains { columns[column].contains($0) }, "\(setting.key) is not in column \(column + 1)")
            #expect(!names.contains { columns[1 - column].contains($0) }, "\(setting.key) is also in column \(2 - column)")
        }
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }
}
