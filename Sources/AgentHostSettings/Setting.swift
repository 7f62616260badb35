import Foundation

/// One setting of `agenthost serve`, declared once: its config-file key, its command-line flag, its help, the
/// values it accepts (the same check for both sources), where it goes in `ServeSettings` (whose initial value is
/// its default), and whether a SIGHUP reload can apply it. The config reader, the command-line parser, `--help`,
/// the reload's "takes effect at the next restart" list and the README check all read `ServeSettings.catalog`.
///
/// Written here rather than taken from a library: swift-argument-parser declares each option as a stored property
/// (it cannot generate options from a table), and swift-configuration reads values from providers but has no place
/// for a setting's range, its help, or for refusing a config key nobody declared (a typo must be an error).
public struct Setting: Sendable {
    /// When a changed value takes effect.
    public enum Applies: Sendable {
        /// A SIGHUP reload applies it to the connections that arrive from then on.
        case onReload
        /// The process was built with it: it keeps its value until a restart.
        case atRestart
    }

    /// Where a value came from; errors name the key or the flag accordingly.
    public enum Input {
        case json(Any)
        case text(String)
    }

    /// The config file's key; a dot separates a section from its key (`websocket.max_frame_size`).
    public let key: String
    /// The command-line flag without its dashes; nil: the config file only (secrets, lists).
    public let flag: String?
    /// What `--help` and errors call a value (`BYTES`, `MS`, `PATH`).
    public let valueName: String
    public let help: String
    public let applies: Applies
    /// Whether the flag takes no value (`--watch`; `--watch=false` is also accepted).
    public let isSwitch: Bool
    /// What the setting accepts, in words: the end of "KEY must be ...".
    public let expectation: String
    private let assignValue: @Sendable (inout ServeSettings, Input) -> Bool
    private let describeValue: @Sendable (ServeSettings) -> String
    private let copyValue: @Sendable (ServeSettings, inout ServeSettings) -> Void

    /// The command-line spelling, `--max-frame-size`.
    public var option: String? { self.flag.map { "--" + $0 } }

    /// Checks `input` and stores it, or throws an error naming the key (or flag) and what it accepts.
    public func assign(_ input: Input, to settings: inout ServeSettings) throws(SettingsError) {
        defer { settings.given.insert(self.key) }
        guard self.assignValue(&settings, input) else {
            switch input {
            case .json:
                throw SettingsError("\(self.key) must be \(self.expectation)")
            case .text(let text):
                // The command line's value is echoed (shortened): it may not be what the operator meant to type.
                let shown = text.count > 40 ? String(text.prefix(40)) + "..." : text
                throw SettingsError("\(self.option ?? self.key) must be \(self.expectation), got '\(shown)'")
            }
        }
    }

    /// The value `settings` holds, as `--help` shows defaults and a reload compares old and new.
    public func describe(_ settings: ServeSettings) -> String {
        self.describeValue(settings)
    }

    /// Sets this setting of `target` to its value in `source`.
    public func copy(from source: ServeSettings, to target: inout ServeSettings) {
        self.copyValue(source, &target)
    }

    /// A setting stored at `path`, its values checked and converted by `kind`.
    /// - Parameter flag: nil derives it from the key (`max_header_size` → `max-header-size`); `""` makes it a
    ///   file-only setting.
    init<Value>(_ key: String, flag: String? = nil, _ path: any WritableKeyPath<ServeSettings, Value> & Sendable,
                _ kind: SettingKind<Value>, applies: Applies, help: String) {
        self.init(key, flag: flag, kind, applies: applies, help: help,
                  set: { $0[keyPath: path] = $1 }, get: { $0[keyPath: path] })
    }

    /// A setting whose value lands in more than one place, or needs converting on the way (`listen`).
    init<Value>(_ key: String, flag: String? = nil, _ kind: SettingKind<Value>, applies: Applies, help: String,
                set: @escaping @Sendable (inout ServeSettings, Value) -> Void,
                get: @escaping @Sendable (ServeSettings) -> Value) {
        self.key = key
        if let flag {
            self.flag = flag.isEmpty ? nil : flag
        } else {
            self.flag = key.replacingOccurrences(of: "_", with: "-").replacingOccurrences(of: ".", with: "-")
        }
        self.valueName = kind.valueName
        self.help = help
        self.applies = applies
        self.isSwitch = kind.isSwitch
        self.expectation = kind.expectation
        self.assignValue = { settings, input in
            let value: Value?
            switch input {
            case .json(let json): value = kind.fromJSON(json)
            case .text(let text): value = kind.fromText(text)
            }
            guard let value else { return false }
            set(&settings, value)
            return true
        }
        self.describeValue = { kind.describe(get($0)) }
        self.copyValue = { source, target in set(&target, get(source)) }
    }
}

/// A refused setting, config file or command line: the message names the key or flag and what it accepts.
public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
