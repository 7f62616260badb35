import Foundation

extension ServeSettings {
    /// The settings given on the command line (`--max-frame-size 4096`, `--max-frame-size=4096`, `--watch`), each
    /// with its text, in order (a repeated flag: the last wins). Values are checked when they are applied
    /// (`resolve`, or `check(commandLine:)`), with the same check as the config file's; here a flag no setting has
    /// is refused, with a likely spelling when there is one.
    public static func parse(commandLine arguments: [String]) throws(SettingsError) -> [(Setting, String)] {
        var parsed: [(Setting, String)] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                var hint = "settings are given as --NAME VALUE"
                if let (previous, _) = parsed.last, previous.isSwitch, ["true", "false"].contains(argument) {
                    hint = "a switch takes its value after '=': \(previous.option ?? "")=\(argument)"
                }
                throw SettingsError("unexpected argument '\(argument)': \(hint)")
            }
            var name = String(argument.dropFirst(2))
            var attached: String?
            if let equals = name.firstIndex(of: "=") {
                attached = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let setting = Self.setting(flag: name) else {
                if let fileOnly = Self.catalog.first(where: { $0.flag == nil && $0.key == name.replacingOccurrences(of: "-", with: "_") }) {
                    throw SettingsError("'\(fileOnly.key)' is set in the config file only (a command line is visible to "
                        + "every user of the machine)\(fileOnly.key == "admin_token" ? "; or AGENTHOST_ADMIN_TOKEN" : "")")
                }
                throw SettingsError("unknown option '--\(name)'\(Self.suggestion(for: name))")
            }
            if let attached {
                parsed.append((setting, attached))
            } else if setting.isSwitch {
                parsed.append((setting, "true"))
            } else if index < arguments.endIndex && !arguments[index].hasPrefix("--") {
                parsed.append((setting, arguments[index]))
                index += 1
            } else {
                throw SettingsError("--\(name) needs a value (\(setting.valueName))")
            }
        }
        return parsed
    }

    /// Each value of a parsed command line checked on its own (cross-setting checks need the config file too).
    public static func check(commandLine: [(Setting, String)]) throws(SettingsError) {
        var scratch = ServeSettings()
        for (setting, value) in commandLine { try setting.assign(.text(value), to: &scratch) }
    }

    /// " (did you mean --drain-timeout-ms?)": the flag the name spells with `_` or `.`, else a flag that starts with
    /// the name given (the shortest), else the longest flag the name starts or ends with, else one ending with it.
    private static func suggestion(for name: String) -> String {
        // Config keys spelled as flags (`--max_frame_size`, `--websocket-max-frame-size`) are the likely mistakes.
        let name = name.replacingOccurrences(of: "_", with: "-").replacingOccurrences(of: ".", with: "-")
        guard name.count >= 4 else { return "" }
        let flags = Self.catalog.compactMap(\.flag)
        let match = flags.first { $0 == name }
            ?? flags.filter { $0.hasPrefix(name) }.min { $0.count < $1.count }
            ?? flags.filter { name.hasPrefix($0) || name.hasSuffix($0) }.max { $0.count < $1.count }
            ?? flags.first { $0.hasSuffix(name) }
        return match.map { " (did you mean --\($0)?)" } ?? ""
    }

    /// What `agenthost serve --help` lists before its own options: every setting with its flag, config key, default
    /// and what it accepts, from the catalog. Wrapped here to 78 columns: the argument parser re-wraps longer lines
    /// and would lose the indentation.
    public static var helpText: String {
        let defaults = ServeSettings()
        var lines = wrap("Every setting can be given on the command line or in the config file (--config); a flag "
            + "wins over the file. SIGHUP re-reads the file; settings marked \"restart\" keep their value until the "
            + "server restarts.", indent: "")
        for setting in Self.catalog {
            let flag = setting.option.map { setting.isSwitch ? $0 : "\($0) \(setting.valueName)" } ?? "(file only)"
            let restart = setting.applies == .atRestart ? "; restart" : ""
            lines.append("")
            lines += wrap("\(flag) (\(setting.key)\(restart))", indent: "  ")
            lines += wrap("\(setting.help) Default: \(setting.describe(defaults)).", indent: "      ")
        }
        lines.append("")
        lines += wrap("Sections only the config file has: auth, access, scopes, routes, plugin_config (see the README).",
                      indent: "")
        return lines.joined(separator: "\n")
    }

    private static func wrap(_ text: String, indent: String, width: Int = 78) -> [String] {
        var lines: [String] = []
        var line = indent
        for word in text.split(separator: " ") {
            if line.count > indent.count && line.count + 1 + word.count > width {
                lines.append(line)
                line = indent
            }
            line += (line.count > indent.count ? " " : "") + word
        }
        lines.append(line)
        return lines
    }
}
