import AgentHostAuth
import AgentHostCore
import AgentHostRunLog
import Foundation
import NIOCore

/// The JSON config file (`--config FILE`). Every command-line flag of `serve` can be set here; a flag given on
/// the command line wins. Unknown keys are errors, so a typo is reported instead of silently ignored.
///
/// ```json
/// {
///   "listen": "127.0.0.1:8080",
///   "plugins": "/etc/agenthost/plugins",
///   "event_loops": 2,
///   "workers": 1,
///   "watchdog_ms": 10000,
///   "log_level": "info",
///   "watch": false,
///   "drain_timeout_ms": 30000,
///   "run_drain_timeout_ms": 600000,
///   "allowlist": "/etc/agenthost/plugins.sha256",
///   "max_plugin_size": 268435456,
///   "admin_token": "(or AGENTHOST_ADMIN_TOKEN in the environment)",
///   "admin_trust_loopback": false,
///   "max_header_size": 16384,
///   "max_connections": 10000,
///   "max_connections_per_address": 256,
///   "allowed_origins": ["https://app.example.com"],
///   "routes": { "/agents/writer": { "allowed_origins": ["https://writer.example.com"] } },
///   "handshake_timeout_ms": 10000,
///   "keepalive_timeout_ms": 5000,
///   "max_request_body_size": 65536,
///   "shutdown_timeout_ms": 10000,
///   "slow_callback_ms": 50,
///   "websocket": {
///     "max_frame_size": 1048576, "max_message_size": 1048576,
///     "ping_interval_ms": 30000, "ping_timeout_ms": 20000, "idle_timeout_ms": 300000, "close_timeout_ms": 5000,
///     "outbound_high_watermark": 1048576, "outbound_low_watermark": 262144, "outbound_hard_limit": 8388608,
///     "max_messages_per_second": 1000, "message_burst": 2000
///   },
///   "plugin_config": { "wordstream": { "delay_ms": 20 } },
///   "state_dir": "./agenthost-state",
///   "run_log": {
///     "max_bytes_per_log": 16777216, "max_ended_logs": 10000, "max_ended_age_seconds": 604800,
///     "max_total_bytes": 4294967296 (268435456 without a state dir),
///     "max_ended_logs_per_owner": 1000, "max_ended_bytes_per_owner": 536870912 (33554432 without a state dir),
///     "max_entry_bytes": 1048576, "max_unpersisted_bytes": 268435456, "flush_interval_ms": 50
///   }
/// }
/// ```
struct ConfigFile {
    var listen: String?
    var plugins: String?
    var eventLoops: Int?
    var workers: Int?
    /// A plugin callback blocking an event loop this long gets its worker killed and replaced (`--workers` > 1);
    /// nil: no watchdog (`watchdog_ms: 0`).
    var watchdog: Duration? = .seconds(10)
    var logLevel: String?
    var watch = false
    var drainTimeout: Double?
    var runDrainTimeout: Double?
    var allowlist: String?
    var maxPluginSize: Int?
    var adminToken: String?
    var auth: AuthConfiguration?
    var tlsCert: String?
    var tlsKey: String?
    var tlsClientCA: String?
    var server = ServerConfiguration()
    var pluginConfigs: [String: [UInt8]] = [:]
    var stateDir: String?
    var runLog = RunLogConfiguration()

    struct Error: Swift.Error, CustomStringConvertible {
        var description: String
    }

    static func load(path: String) throws -> ConfigFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw Error(description: "cannot read config file \(path): \(error.localizedDescription)")
        }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw Error(description: "config file \(path) is not valid JSON: \(error.localizedDescription)")
        }
        guard let object = root as? [String: Any] else {
            throw Error(description: "config file \(path) must hold a JSON object")
        }
        do {
            return try ConfigFile(object)
        } catch let error as Error {
            throw Error(description: "config file \(path): \(error.description)")
        }
    }

    init() {}

    init(_ object: [String: Any]) throws {
        var reader = Reader(object: object, path: "")
        self.listen = try reader.string("listen")
        self.plugins = try reader.string("plugins")
        self.eventLoops = try reader.int("event_loops", min: 1)
        self.workers = try reader.int("workers", min: 1, max: 256)
        if let ms = try reader.int("watchdog_ms", min: 0) { self.watchdog = ms == 0 ? nil : .milliseconds(ms) }
        self.logLevel = try reader.string("log_level")
        self.watch = try reader.bool("watch") ?? false
        self.drainTimeout = try reader.int("drain_timeout_ms", min: 0).map { Double($0) / 1000 }
        self.runDrainTimeout = try reader.int("run_drain_timeout_ms", min: 0).map { Double($0) / 1000 }
        self.allowlist = try reader.string("allowlist")
        self.maxPluginSize = try reader.int("max_plugin_size", min: 4096)
        self.adminToken = try reader.string("admin_token")
        if let v = try reader.bool("admin_trust_loopback") { self.server.adminTrustsLoopback = v }
        if let v = try reader.int("max_header_size", min: 1024) { self.server.maxHeaderSize = v }
        if let v = try reader.int("max_connections", min: 0) { self.server.maxConnections = v }
        if let v = try reader.int("max_connections_per_address", min: 0) { self.server.maxConnectionsPerAddress = v }
        if let auth = try reader.object("auth") { self.auth = try Self.auth(auth) }
        self.tlsCert = try reader.string("tls_cert")
        self.tlsKey = try reader.string("tls_key")
        self.tlsClientCA = try reader.string("tls_client_ca")
        if let v = try reader.strings("allowed_origins") { self.server.defaultRoutePolicy.allowedOrigins = v }
        if let access = try Self.access(&reader, hasAuth: self.auth != nil) {
            self.server.defaultRoutePolicy.access = access
        }
        if let routes = try reader.object("routes") {
            var folded: [String: String] = [:]
            for (path, value) in routes {
                guard path.hasPrefix("/"), let object = value as? [String: Any] else {
                    throw Error(description: "routes must map paths starting with '/' to objects (got '\(path)')")
                }
                // A key no request can spell (requests must be canonical) would never apply: say so now.
                if let problem = CanonicalPath.problem(with: path) {
                    throw Error(description: "routes.\(path): no request can match it: \(problem)")
                }
                if let other = folded.updateValue(path, forKey: path.lowercased()) {
                    throw Error(description: "routes.\(path) and routes.\(other) differ only in letter case")
                }
                var route = Reader(object: object, path: "routes.\(path).")
                var policy = RoutePolicy(allowedOrigins: try route.strings("allowed_origins"),
                                         access: self.server.defaultRoutePolicy.access)
                if let access = try Self.access(&route, hasAuth: self.auth != nil) { policy.access = access }
                self.server.routePolicies[path] = policy
                try route.rejectUnknown()
            }
        }
        if let v = try reader.milliseconds("handshake_timeout_ms") {
            self.server.handshakeTimeout = v
            self.server.http.requestTimeout = v
        }
        if let v = try reader.milliseconds("keepalive_timeout_ms") { self.server.http.keepAliveTimeout = v }
        if let v = try reader.int("max_request_body_size", min: 0) { self.server.http.maxBodySize = v }
        if let v = try reader.milliseconds("shutdown_timeout_ms") { self.server.shutdownTimeout = v }
        if let v = try reader.milliseconds("slow_callback_ms") { self.server.webSocket.slowCallbackThreshold = v }
        if let ws = try reader.object("websocket") {
            var r = Reader(object: ws, path: "websocket.")
            var c = self.server.webSocket
            if let v = try r.int("max_frame_size", min: 125, max: Int(UInt32.max)) { c.maxFrameSize = v }
            if let v = try r.int("max_message_size", min: 125) { c.maxMessageSize = v }
            if let v = try r.optionalMilliseconds("ping_interval_ms") { c.pingInterval = v }
            if let v = try r.milliseconds("ping_timeout_ms") { c.pingTimeout = v }
            if let v = try r.optionalMilliseconds("idle_timeout_ms") { c.idleTimeout = v }
            if let v = try r.milliseconds("close_timeout_ms") { c.closeTimeout = v }
            if let v = try r.int("outbound_high_watermark", min: 1) { c.outboundHighWatermark = v }
            if let v = try r.int("outbound_low_watermark", min: 0) { c.outboundLowWatermark = v }
            if let v = try r.int("outbound_hard_limit", min: 1) { c.outboundHardLimit = v }
            if let v = try r.int("max_messages_per_second", min: 0) { c.maxMessagesPerSecond = v }
            if let v = try r.int("message_burst", min: 1) { c.messageBurst = v }
            try r.rejectUnknown()
            self.server.webSocket = c
        }
        if let plugins = try reader.object("plugin_config") {
            for (name, value) in plugins {
                guard JSONSerialization.isValidJSONObject(value) else {
                    throw Error(description: "plugin_config.\(name) must be a JSON object or array")
                }
                self.pluginConfigs[name] = Array(try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]))
            }
        }
        self.stateDir = try reader.string("state_dir")
        if self.stateDir?.isEmpty == true { throw Error(description: "state_dir must not be empty (leave it out for none)") }
        if let runLog = try reader.object("run_log") { try Self.runLog(runLog, into: &self.runLog) }
        try reader.rejectUnknown()
    }

    /// `run_log`: retention and limits of the host's run logs.
    private static func runLog(_ object: [String: Any], into configuration: inout RunLogConfiguration) throws {
        var r = Reader(object: object, path: "run_log.")
        if let v = try r.int("max_bytes_per_log", min: 1024) { configuration.retention.maxBytesPerLog = v }
        if let v = try r.int("max_ended_logs", min: 0) { configuration.retention.maxEndedLogs = v }
        if let v = try r.int("max_ended_age_seconds", min: 1) { configuration.retention.maxEndedAgeSeconds = Int64(v) }
        if let v = try r.int("max_total_bytes", min: 1 << 20) { configuration.retention.maxTotalBytes = v }
        if let v = try r.int("max_ended_logs_per_owner", min: 0) { configuration.retention.maxEndedLogsPerOwner = v }
        if let v = try r.int("max_ended_bytes_per_owner", min: 1 << 20) { configuration.retention.maxEndedBytesPerOwner = v }
        if let v = try r.int("max_entry_bytes", min: 1, max: 64 << 20) { configuration.maxEntryBytes = v }
        if let v = try r.int("max_unpersisted_bytes", min: 1 << 20) { configuration.maxUnpersistedBytes = v }
        // Past the idle interval (100 ms) a busy store would be written no more often than an idle one is polled.
        if let v = try r.int("flush_interval_ms", min: 1, max: 100) { configuration.flushInterval = .milliseconds(Int64(v)) }
        try r.rejectUnknown()
        // A total smaller than one run would delete a large run the moment it ends.
        let retention = configuration.retention
        for (key, value) in [("max_total_bytes", retention.maxTotalBytes),
                             ("max_ended_bytes_per_owner", retention.maxEndedBytesPerOwner)]
        where value < retention.maxBytesPerLog {
            throw Error(description: "run_log.\(key) (\(value)) must be at least run_log.max_bytes_per_log "
                + "(\(retention.maxBytesPerLog)): a run that size would be deleted as soon as it ended")
        }
    }

    /// `access`: "public" or "authenticated"; `scopes`: required scopes (implies authenticated).
    private static func access(_ reader: inout Reader, hasAuth: Bool) throws -> RouteAccess? {
        let access = try reader.string("access")
        let scopes = try reader.strings("scopes")
        guard access != nil || scopes != nil else { return nil }
        guard hasAuth else {
            throw Error(description: "\(reader.path)access/scopes need an 'auth' section to check credentials with")
        }
        if let scopes, !scopes.isEmpty { return .scopes(scopes) }
        switch access {
        case "public"?: return .open
        case "authenticated"?, nil: return .authenticated
        case let other?: throw Error(description: "\(reader.path)access must be 'public' or 'authenticated', not '\(other)'")
        }
    }

    private static func auth(_ object: [String: Any]) throws -> AuthConfiguration {
        var reader = Reader(object: object, path: "auth.")
        var auth = AuthConfiguration()
        auth.hmacSecretFile = try reader.string("hmac_secret_file")
        if let v = try reader.string("hmac_algorithm") { auth.hmacAlgorithm = v }
        auth.jwksFile = try reader.string("jwks_file")
        if let v = try reader.string("jwks_rsa_algorithm") { auth.jwksRSAAlgorithm = v }
        auth.issuer = try reader.string("issuer")
        auth.audience = try reader.string("audience")
        if let v = try reader.int("leeway_seconds", min: 0, max: 3600) { auth.leewaySeconds = v }
        auth.allowQueryToken = try reader.bool("allow_query_token") ?? false
        if let keys = reader.value("public_keys") {
            guard let list = keys as? [[String: Any]] else { throw Error(description: "auth.public_keys must be a list of objects") }
            for (index, entry) in list.enumerated() {
                var key = Reader(object: entry, path: "auth.public_keys[\(index)].")
                guard let path = try key.string("path"), let algorithm = try key.string("algorithm") else {
                    throw Error(description: "auth.public_keys[\(index)] needs 'path' and 'algorithm'")
                }
                try key.rejectUnknown()
                auth.publicKeyFiles.append(.init(path: path, algorithm: algorithm))
            }
        }
        if let keys = reader.value("api_keys") {
            guard let list = keys as? [[String: Any]] else { throw Error(description: "auth.api_keys must be a list of objects") }
            for (index, entry) in list.enumerated() {
                var key = Reader(object: entry, path: "auth.api_keys[\(index)].")
                guard let hash = try key.string("sha256"), hash.count == 64, hash.allSatisfy(\.isHexDigit) else {
                    throw Error(description: "auth.api_keys[\(index)].sha256 must be the key's SHA-256 in hex")
                }
                let subject = try key.string("subject") ?? "api-key-\(index)"
                let scopes = try key.strings("scopes") ?? []
                try key.rejectUnknown()
                auth.apiKeys.append(.init(sha256: hash, subject: subject, scopes: scopes))
            }
        }
        try reader.rejectUnknown()
        guard auth.hmacSecretFile != nil || !auth.publicKeyFiles.isEmpty || auth.jwksFile != nil || !auth.apiKeys.isEmpty
        else { throw Error(description: "auth needs hmac_secret_file, public_keys, jwks_file or api_keys") }
        return auth
    }

    /// Reads typed keys and remembers which were used, so unknown ones can be reported.
    private struct Reader {
        let object: [String: Any]
        let path: String
        var used: Set<String> = []

        mutating func value(_ key: String) -> Any? {
            self.used.insert(key)
            guard let value = self.object[key], !(value is NSNull) else { return nil }
            return value
        }

        mutating func string(_ key: String) throws -> String? {
            guard let value = self.value(key) else { return nil }
            guard let string = value as? String else { throw Error(description: "\(self.path)\(key) must be a string") }
            return string
        }

        mutating func bool(_ key: String) throws -> Bool? {
            guard let value = self.value(key) else { return nil }
            guard Self.isBoolean(value), let bool = value as? Bool else {
                throw Error(description: "\(self.path)\(key) must be true or false")
            }
            return bool
        }

        mutating func int(_ key: String, min: Int, max: Int = Int.max) throws -> Int? {
            guard let value = self.value(key) else { return nil }
            guard !Self.isBoolean(value), let number = value as? NSNumber,
                let int = Int(exactly: number.doubleValue), int >= min, int <= max
            else {
                throw Error(description: "\(self.path)\(key) must be a whole number from \(min) to \(max)")
            }
            return int
        }

        mutating func milliseconds(_ key: String) throws -> TimeAmount? {
            try self.int(key, min: 1).map { .milliseconds(Int64($0)) }
        }

        /// Like `milliseconds`, but 0 means "disabled" (returns .some(nil)).
        mutating func optionalMilliseconds(_ key: String) throws -> TimeAmount?? {
            guard let ms = try self.int(key, min: 0) else { return nil }
            return .some(ms == 0 ? nil : .milliseconds(Int64(ms)))
        }

        mutating func strings(_ key: String) throws -> [String]? {
            guard let value = self.value(key) else { return nil }
            guard let strings = value as? [String] else {
                throw Error(description: "\(self.path)\(key) must be a list of strings")
            }
            return strings
        }

        mutating func object(_ key: String) throws -> [String: Any]? {
            guard let value = self.value(key) else { return nil }
            guard let object = value as? [String: Any] else {
                throw Error(description: "\(self.path)\(key) must be a JSON object")
            }
            return object
        }

        /// JSON `true`/`false` also bridge to NSNumber; a number setting must not accept them.
        static func isBoolean(_ value: Any) -> Bool {
            type(of: value) == Bool.self || String(describing: type(of: value)).contains("Bool")
        }

        func rejectUnknown() throws {
            let unknown = Set(self.object.keys).subtracting(self.used).sorted()
            guard unknown.isEmpty else {
                throw Error(description: "unknown key(s): \(unknown.map { self.path + $0 }.joined(separator: ", "))")
            }
        }
    }
}
