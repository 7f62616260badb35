import Foundation
import Logging
import NIOCore

/// The values one kind of setting accepts, from a config file (JSON) and from the command line (text), with one
/// check for both, and how a value is shown.
struct SettingKind<Value>: Sendable {
    /// The end of "KEY must be ...".
    let expectation: String
    let valueName: String
    var isSwitch = false
    let fromJSON: @Sendable (Any) -> Value?
    let fromText: @Sendable (String) -> Value?
    let describe: @Sendable (Value) -> String

    /// The same values, stored as another type: `wholeNumber` read as milliseconds, say.
    func map<Other>(expectation: String? = nil, valueName: String? = nil,
                    _ forward: @escaping @Sendable (Value) -> Other?,
                    describe: @escaping @Sendable (Other) -> String) -> SettingKind<Other> {
        let json = self.fromJSON, text = self.fromText
        return SettingKind<Other>(
            expectation: expectation ?? self.expectation, valueName: valueName ?? self.valueName,
            isSwitch: self.isSwitch,
            fromJSON: { json($0).flatMap(forward) }, fromText: { text($0).flatMap(forward) }, describe: describe)
    }
}

extension SettingKind where Value == Int {
    /// A whole number in `range`. JSON `true`/`false` bridge to NSNumber too; they are not numbers here.
    static func wholeNumber(_ range: ClosedRange<Int>, valueName: String = "N") -> Self {
        SettingKind(
            expectation: "a whole number from \(range.lowerBound) to \(range.upperBound)", valueName: valueName,
            fromJSON: { json in
                // `as? Int` first: a double cannot hold every Int (Int.max would round past it); it is exact or nil.
                guard !isJSONBoolean(json), let number = json as? NSNumber,
                    let int = (number as? Int) ?? Int(exactly: number.doubleValue), range.contains(int)
                else { return nil }
                return int
            },
            fromText: { text in Int(text).flatMap { range.contains($0) ? $0 : nil } },
            describe: { "\($0)" })
    }

    static func bytes(_ range: ClosedRange<Int>) -> Self { .wholeNumber(range, valueName: "BYTES") }
}

extension SettingKind where Value == Int? {
    /// At least one; nil (left out): the default the caller computes (one thread per core).
    static func eventLoops(max: Int) -> Self {
        SettingKind<Int>.wholeNumber(1...max).map({ Optional(Optional($0)) },
                                                  describe: { $0.map { "\($0)" } ?? "one per core" })
    }
}

// Milliseconds stop at Int32.max (24.8 days): far past any deadline, and a value in nanoseconds stays far inside
// Int64 (TimeAmount and Duration would trap past about 9.2 x 10^12 ms).
extension SettingKind where Value == TimeAmount {
    /// Milliseconds, at least 1.
    static var milliseconds: Self { .milliseconds(max: Int(Int32.max)) }

    static func milliseconds(max: Int) -> Self {
        SettingKind<Int>.wholeNumber(1...max, valueName: "MS")
            .map({ .milliseconds(Int64($0)) }, describe: { "\($0.nanoseconds / 1_000_000)" })
    }
}

extension SettingKind where Value == TimeAmount? {
    /// Milliseconds; 0 turns the feature off.
    static var millisecondsOrOff: Self {
        SettingKind<Int>.wholeNumber(0...Int(Int32.max), valueName: "MS").map(
            expectation: "a whole number of milliseconds from 0 (off) to \(Int32.max)",
            { .some($0 == 0 ? nil : .milliseconds(Int64($0))) },
            describe: { $0.map { "\($0.nanoseconds / 1_000_000)" } ?? "0 (off)" })
    }
}

extension SettingKind where Value == Duration {
    /// Milliseconds, 0 allowed (at once).
    static var durationMilliseconds: Self {
        SettingKind<Int>.wholeNumber(0...Int(Int32.max), valueName: "MS")
            .map({ .milliseconds(Int64($0)) }, describe: { "\(Self.milliseconds(of: $0))" })
    }

    static func milliseconds(of duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

extension SettingKind where Value == Duration? {
    /// Milliseconds; 0 turns the feature off, otherwise at least `min`.
    static func durationMillisecondsOrOff(min: Int) -> Self {
        SettingKind<Int>.wholeNumber(0...Int(Int32.max), valueName: "MS").map(
            expectation: "0 (off) or a whole number of milliseconds from \(min) to \(Int32.max)",
            { $0 != 0 && $0 < min ? nil : .some($0 == 0 ? nil : .milliseconds(Int64($0))) },
            describe: { $0.map { "\(SettingKind<Duration>.milliseconds(of: $0))" } ?? "0 (off)" })
    }
}

extension SettingKind where Value == Bool {
    static var boolean: Self {
        SettingKind(
            expectation: "true or false", valueName: "", isSwitch: true,
            fromJSON: { json in isJSONBoolean(json) ? json as? Bool : nil },
            fromText: { text in ["true": true, "false": false][text] },
            describe: { "\($0)" })
    }
}

extension SettingKind where Value == String? {
    /// A file or directory path; empty is refused (leave the setting out for none).
    static var path: Self {
        .nonEmpty(expectation: "a non-empty path (leave it out for none)", valueName: "PATH", describe: { $0 ?? "none" })
    }

    /// A string kept out of `--help` and logs (the admin token).
    static var secret: Self {
        .nonEmpty(expectation: "a non-empty string", valueName: "TOKEN", describe: { $0 == nil ? "none" : "(set)" })
    }

    private static func nonEmpty(expectation: String, valueName: String,
                                 describe: @escaping @Sendable (String?) -> String) -> Self {
        SettingKind(
            expectation: expectation, valueName: valueName,
            fromJSON: { json in (json as? String).flatMap { $0.isEmpty ? nil : .some($0) } },
            fromText: { $0.isEmpty ? nil : .some($0) },
            describe: describe)
    }
}

extension SettingKind where Value == [String]? {
    /// A JSON list of strings; on the command line, a comma-separated list.
    static var strings: Self {
        SettingKind(
            expectation: "a list of strings", valueName: "A,B",
            fromJSON: { json in (json as? [Any]).flatMap { list in
                let strings = list.compactMap { $0 as? String }
                return strings.count == list.count ? .some(strings) : nil
            } },
            fromText: { .some($0.split(separator: ",", omittingEmptySubsequences: true).map(String.init)) },
            describe: { $0.map { $0.joined(separator: ",") } ?? "any" })
    }
}

extension SettingKind where Value == Logger.Level {
    static var logLevel: Self {
        let names = Logger.Level.allCases.map(\.rawValue)
        return SettingKind(
            expectation: "one of \(names.joined(separator: ", "))", valueName: "LEVEL",
            fromJSON: { json in (json as? String).flatMap { Logger.Level(rawValue: $0.lowercased()) } },
            fromText: { Logger.Level(rawValue: $0.lowercased()) },
            describe: { $0.rawValue })
    }
}

extension SettingKind where Value == ListenAddress {
    static var listenAddress: Self {
        SettingKind(
            expectation: "HOST:PORT with a port from 0 to 65535 (an IPv6 host in brackets)", valueName: "HOST:PORT",
            fromJSON: { json in (json as? String).flatMap(ListenAddress.init(parsing:)) },
            fromText: { ListenAddress(parsing: $0) },
            describe: { $0.description })
    }
}

/// JSON `true`/`false` bridge to NSNumber as well as Bool; a number setting must not accept them, and a boolean
/// setting must not accept 0 and 1.
func isJSONBoolean(_ value: Any) -> Bool {
    type(of: value) == Bool.self || String(describing: type(of: value)).contains("Bool")
}
