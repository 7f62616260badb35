/// A message between the test (playing the client) and the plugin.
public enum TestMessage: Sendable, Equatable, CustomStringConvertible {
    case text(String)
    case binary([UInt8])

    public var text: String? {
        if case .text(let text) = self { return text }
        return nil
    }

    public var description: String {
        switch self {
        case .text(let text): return "text(\(text))"
        case .binary(let bytes): return "binary(\(bytes.count) bytes)"
        }
    }
}

/// What the plugin's `on_upgrade` decided (accepted with the host's choice of subprotocol when it has none).
public enum TestUpgradeOutcome: Sendable, Equatable {
    case accepted(subprotocol: String?)
    case refused(status: Int, body: String)
}

/// Why the harness could not do what the test asked.
public struct PluginHarnessError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}
