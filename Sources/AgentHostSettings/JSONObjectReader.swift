import Foundation

/// Reads typed keys of one JSON object and remembers which were read, so the rest can be reported as unknown.
/// `path` prefixes every key in errors (`routes./echo.`).
struct JSONObjectReader {
    let object: [String: Any]
    let path: String
    private var used: Set<String> = []

    init(object: [String: Any], path: String) {
        self.object = object
        self.path = path
    }

    /// The value at `key`; JSON null counts as absent.
    mutating func value(_ key: String) -> Any? {
        self.used.insert(key)
        guard let value = self.object[key], !(value is NSNull) else { return nil }
        return value
    }

    mutating func string(_ key: String) throws(SettingsError) -> String? {
        guard let value = self.value(key) else { return nil }
        guard let string = value as? String else { throw SettingsError("\(self.path)\(key) must be a string") }
        return string
    }

    mutating func bool(_ key: String) throws(SettingsError) -> Bool? {
        guard let value = self.value(key) else { return nil }
        guard isJSONBoolean(value), let bool = value as? Bool else {
            throw SettingsError("\(self.path)\(key) must be true or false")
        }
        return bool
    }

    mutating func int(_ key: String, min: Int, max: Int = Int.max) throws(SettingsError) -> Int? {
        guard let value = self.value(key) else { return nil }
        guard let int = SettingKind<Int>.wholeNumber(min...max).fromJSON(value) else {
            throw SettingsError("\(self.path)\(key) must be a whole number from \(min) to \(max)")
        }
        return int
    }

    mutating func strings(_ key: String) throws(SettingsError) -> [String]? {
        guard let value = self.value(key) else { return nil }
        guard let strings = value as? [String] else {
            throw SettingsError("\(self.path)\(key) must be a list of strings")
        }
        return strings
    }

    mutating func object(_ key: String) throws(SettingsError) -> [String: Any]? {
        guard let value = self.value(key) else { return nil }
        guard let object = value as? [String: Any] else {
            throw SettingsError("\(self.path)\(key) must be a JSON object")
        }
        return object
    }

    /// A list of objects, each with a reader of its own (`auth.api_keys[0].`); absent: empty.
    mutating func objects(_ key: String) throws(SettingsError) -> [JSONObjectReader] {
        guard let value = self.value(key) else { return [] }
        guard let list = value as? [[String: Any]] else {
            throw SettingsError("\(self.path)\(key) must be a list of objects")
        }
        return list.enumerated().map { JSONObjectReader(object: $1, path: "\(self.path)\(key)[\($0)].") }
    }

    func rejectUnknown() throws(SettingsError) {
        let unknown = Set(self.object.keys).subtracting(self.used).sorted()
        guard unknown.isEmpty else {
            throw SettingsError("unknown key(s): \(unknown.map { self.path + $0 }.joined(separator: ", "))")
        }
    }
}
