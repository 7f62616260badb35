import Foundation
import FoundationEssentials

/// The plugin's configuration (its object under `plugin_config` in the host's config file), with typed reads that
/// fail with a message naming the key: the host logs it and refuses the plugin, keeping what already serves.
public struct AgentRouteConfig: @unchecked Sendable {
    // @unchecked: the dictionary comes from JSONSerialization and is never mutated.
    public let object: [String: Any]

    public init(json bytes: [UInt8]) throws {
        // The host passes "{}" when the config file has nothing for the plugin; be as lenient with empty input.
        if bytes.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
            self.object = [:]
            return
        }
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(bytes)), let object = parsed as? [String: Any]
        else { throw AgentRunError("the plugin config must be a JSON object") }
        self.object = object
    }

    public init(object: [String: Any]) { self.object = object }

    public func string(_ key: String) throws -> String? {
        guard let value = self.object[key], !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw AgentRunError("config key \(key) must be a string") }
        return text
    }

    public func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let value = self.object[key], !(value is NSNull) else { return fallback }
        guard let number = value as? NSNumber, !isJSONBoolean(value), let int = Int(exactly: number.doubleValue),
            range.contains(int)
        else { throw AgentRunError("config key \(key) must be a whole number from \(range.lowerBound) to \(range.upperBound)") }
        return int
    }

    public func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = self.object[key], !(value is NSNull) else { return fallback }
        guard isJSONBoolean(value), let flag = value as? Bool else { throw AgentRunError("config key \(key) must be true or false") }
        return flag
    }

    public func object(_ key: String) throws -> AgentRouteConfig? {
        guard let value = self.object[key], !(value is NSNull) else { return nil }
        guard let object = value as? [String: Any] else { throw AgentRunError("config key \(key) must be an object") }
        return AgentRouteConfig(object: object)
    }

    /// Throws naming the first key not in `known`.
    public func rejectUnknownKeys(_ known: Set<String>, in place: String = "config") throws {
        if let unknown = self.object.keys.sorted().first(where: { !known.contains($0) }) {
            throw AgentRunError("unknown \(place) key \(unknown) (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// The value at `key` as JSON text.
    public func json(_ key: String) throws -> String? {
        guard let value = self.object[key], !(value is NSNull) else { return nil }
        guard JSONSerialization.isValidJSONObject(value), let data = try? JSONSerialization.data(withJSONObject: value)
        else { throw AgentRunError("config key \(key) must be a JSON object or array") }
        return String(decoding: data, as: UTF8.self)
    }
}
