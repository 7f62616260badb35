extension ServeSettings {
    /// The settings given on the command line (`--max-frame-size 4096`, `--max-frame-size=4096`, `--watch`), each
    /// with its text, in order (a repeated flag: the last wins). Values are checked when they are applied
    /// (`resolve`), with the same check as the config file's; here a flag no setting has is refused, with the
    /// nearest spelling when there is one.
    public static func parse(commandLine arguments: [String]) throws(SettingsError) -> [(Setting, String)] {
        var parsed: [(Setting, String)] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw SettingsError("unexpected argument '\(argument)': settings are given as --NAME VALUE")
            }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let setting = Self.setting(flag: name) else {
                throw SettingsError("unknown option '--\(name)'\(Self.suggestion(for: name))")
            }
            if value == nil {
                if setting.isSwitch {
                    value = "true"
                } else if index < arguments.endIndex && !arguments[index].hasPrefix("--") {
                    value = arguments[index]
                    index += 1
                } else {
                    throw SettingsError("--\(name) needs a value (\(setting.valueName))")
                }
            }
            parsed.append((setting, value!))
        }
        return parsed
    }

    /// " (did you mean --drain-timeout-ms?)" for a flag that starts or ends another one's name.
    private static func suggestion(for name: String) -> String {
        guard name.count >= 4 else { return "" }
        let match = Self.catalog.compactMap(\.flag).first { $0.hasPrefix(name) || name.hasPrefix($0) || $0.hasSuffix(name) }
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
