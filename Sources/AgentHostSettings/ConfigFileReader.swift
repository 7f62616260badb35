import AgentHostAuth
import AgentHostCore
import AgentHostPlugins
import Foundation
import Glibc

/// Reads the JSON config file (`--config FILE`) into `ServeSettings`: every setting of `ServeSettings.catalog` by
/// its key, then the sections with a structure of their own (`auth`, `access`/`scopes`, `routes`,
/// `plugin_config`). Unknown keys are errors, so a typo is reported instead of silently ignored. See
/// `examples/agenthost.json` and the README's table.
enum ConfigFileReader {
    /// Larger config files are refused unread: a config is kilobytes, and parsing a huge one would stall a
    /// start or a reload for seconds.
    static let maxFileSize = 16 << 20

    /// The file's bytes: a regular file (not a directory, device or FIFO) of at most `maxFileSize`. Opened first,
    /// then checked through the open descriptor: a file swapped for a FIFO between a check by name and the open
    /// would block the read forever.
    static func read(path: String) throws(SettingsError) -> Data {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw SettingsError("cannot read config file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw SettingsError("cannot read config file \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw SettingsError("config file \(path) is not a regular file")
        }
        guard status.st_size <= Self.maxFileSize else {
            throw SettingsError("config file \(path) is larger than \(Self.maxFileSize >> 20) MiB (\(status.st_size) bytes)")
        }
        // Sized by fstat, grown if the file grew since, never past one byte over the limit: a file that grows
        // without end is refused, not read without end.
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size) + 1)
        var count = 0
        while true {
            if count == bytes.count {
                guard bytes.count <= Self.maxFileSize else { break }
                bytes += [UInt8](repeating: 0, count: min(bytes.count, Self.maxFileSize + 1 - bytes.count))
            }
            let got = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if got == 0 { break }
            if got < 0 {
                if errno == EINTR { continue }
                throw SettingsError("cannot read config file \(path): \(String(cString: strerror(errno)))")
            }
            count += got
        }
        guard count <= Self.maxFileSize else {
            throw SettingsError("config file \(path) is larger than \(Self.maxFileSize >> 20) MiB")
        }
        return Data(bytes[..<count])
    }

    /// The file's top-level object.
    static func load(path: String) throws(SettingsError) -> [String: Any] {
        let data = try Self.read(path: path)
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            // Foundation's own description says only "not in the correct format"; the debug one says where.
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            throw SettingsError("config file \(path) is not valid JSON: \(detail ?? error.localizedDescription)")
        }
        guard let object = root as? [String: Any] else {
            throw SettingsError("config file \(path) must hold a JSON object")
        }
        return object
    }

    /// Applies `object` (a config file's content) to `settings`; errors are prefixed with the file's name.
    static func apply(_ object: [String: Any], to settings: inout ServeSettings, file: String) throws(SettingsError) {
        do {
            try Self.apply(object, to: &settings)
        } catch {
            throw SettingsError("config file \(file): \(error.description)")
        }
    }

    static func apply(_ object: [String: Any], to settings: inout ServeSettings) throws(SettingsError) {
        var root = JSONObjectReader(object: object, path: "")
        // The catalog's sections (`websocket`, `run_log`), each read once.
        var sections: [String: JSONObjectReader] = [:]
        for setting in ServeSettings.catalog {
            let value: Any?
            if let dot = setting.key.firstIndex(of: ".") {
                let section = String(setting.key[..<dot]), key = String(setting.key[setting.key.index(after: dot)...])
                if sections[section] == nil {
                    guard let nested = try root.object(section) else { continue }
                    sections[section] = JSONObjectReader(object: nested, path: section + ".")
                }
                value = sections[section]?.value(key)
            } else {
                value = root.value(setting.key)
            }
            if let value { try setting.assign(.json(value), to: &settings) }
        }
        for section in sections.values.sorted(by: { $0.path < $1.path }) { try section.rejectUnknown() }

        if let auth = try root.object("auth") { settings.auth = try Self.auth(auth) }
        if let access = try Self.access(&root, hasAuth: settings.auth != nil) {
            settings.server.defaultRoutePolicy.access = access
        }
        if let routes = try root.object("routes") {
            try Self.routes(routes, into: &settings)
        }
        if let plugins = try root.object("plugin_config") {
            for (name, value) in plugins {
                guard JSONSerialization.isValidJSONObject(value),
                    let bytes = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
                else {
                    throw SettingsError("plugin_config.\(name) must be a JSON object or array")
                }
                // Sorted keys: the same config hashes the same on every reload (a new hash is a new generation).
                settings.pluginManager.pluginConfigs[name] = Array(bytes)
            }
        }
        try root.rejectUnknown()
    }

    /// `routes`: per-path policies (allowed origins, access), keyed by canonical paths or `/prefix/*` patterns.
    private static func routes(_ routes: [String: Any], into settings: inout ServeSettings) throws(SettingsError) {
        var folded: [String: String] = [:]
        for (path, value) in routes.sorted(by: { $0.key < $1.key }) {
            guard path.hasPrefix("/"), let object = value as? [String: Any] else {
                throw SettingsError("routes must map paths starting with '/' to objects (got '\(path)')")
            }
            // A key no request can spell (requests must be canonical) would never apply: say so now.
            if let problem = CanonicalPath.problem(with: path) {
                throw SettingsError("routes.\(path): no request can match it: \(problem)")
            }
            if let other = folded.updateValue(path, forKey: path.lowercased()) {
                throw SettingsError("routes.\(path) and routes.\(other) differ only in letter case")
            }
            var route = JSONObjectReader(object: object, path: "routes.\(path).")
            var policy = RoutePolicy(allowedOrigins: try route.strings("allowed_origins"),
                                     access: settings.server.defaultRoutePolicy.access)
            if let access = try Self.access(&route, hasAuth: settings.auth != nil) { policy.access = access }
            settings.server.routePolicies[path] = policy
            try route.rejectUnknown()
        }
    }

    /// `access`: "public" or "authenticated"; `scopes`: required scopes (implies authenticated).
    private static func access(_ reader: inout JSONObjectReader, hasAuth: Bool) throws(SettingsError) -> RouteAccess? {
        let access = try reader.string("access")
        let scopes = try reader.strings("scopes")
        guard access != nil || scopes != nil else { return nil }
        guard hasAuth else {
            throw SettingsError("\(reader.path)access/scopes need an 'auth' section to check credentials with")
        }
        if let scopes, !scopes.isEmpty { return .scopes(scopes) }
        switch access {
        case "public"?: return .open
        case "authenticated"?, nil: return .authenticated
        case let other?: throw SettingsError("\(reader.path)access must be 'public' or 'authenticated', not '\(other)'")
        }
    }

    /// `auth`: how credentials are checked (keys are read, and JWKS fetched, when the authenticator is made).
    private static func auth(_ object: [String: Any]) throws(SettingsError) -> AuthConfiguration {
        var reader = JSONObjectReader(object: object, path: "auth.")
        var auth = AuthConfiguration()
        auth.hmacSecretFile = try reader.string("hmac_secret_file")
        if let v = try reader.string("hmac_algorithm") { auth.hmacAlgorithm = v }
        auth.jwksFile = try reader.string("jwks_file")
        if let v = try reader.string("jwks_rsa_algorithm") { auth.jwksRSAAlgorithm = v }
        auth.issuer = try reader.string("issuer")
        auth.audience = try reader.string("audience")
        if let v = try reader.int("leeway_seconds", min: 0, max: 3600) { auth.leewaySeconds = v }
        auth.allowQueryToken = try reader.bool("allow_query_token") ?? false
        for (index, var key) in try reader.objects("public_keys").enumerated() {
            guard let path = try key.string("path"), let algorithm = try key.string("algorithm") else {
                throw SettingsError("auth.public_keys[\(index)] needs 'path' and 'algorithm'")
            }
            try key.rejectUnknown()
            auth.publicKeyFiles.append(.init(path: path, algorithm: algorithm))
        }
        for (index, var key) in try reader.objects("api_keys").enumerated() {
            guard let hash = try key.string("sha256"), hash.count == 64, hash.allSatisfy(\.isHexDigit) else {
                throw SettingsError("auth.api_keys[\(index)].sha256 must be the key's SHA-256 in hex")
            }
            let subject = try key.string("subject") ?? "api-key-\(index)"
            let scopes = try key.strings("scopes") ?? []
            try key.rejectUnknown()
            auth.apiKeys.append(.init(sha256: hash, subject: subject, scopes: scopes))
        }
        try reader.rejectUnknown()
        guard auth.hmacSecretFile != nil || !auth.publicKeyFiles.isEmpty || auth.jwksFile != nil || !auth.apiKeys.isEmpty
        else { throw SettingsError("auth needs hmac_secret_file, public_keys, jwks_file or api_keys") }
        return auth
    }
}
