import AgentHostRunLog
import NIOConcurrencyHelpers

/// What the run log functions need to know about a plugin connection: whose instance it belongs to, its route, and
/// who is behind it. Registered when on_open is about to run, removed when the session closes.
final class PluginConnections: Sendable {
    struct Entry: Sendable {
        var instance: UInt64
        var route: String
        var owner: RunLogOwner
    }

    /// NIO's plain mutex: every event loop registers and removes connections here (see `RunLogService.state`).
    private let entries = NIOLockedValueBox<[UInt64: Entry]>([:])

    func register(_ handle: UInt64, _ entry: Entry) {
        self.entries.withLockedValue { $0[handle] = entry }
    }

    func remove(_ handle: UInt64) {
        self.entries.withLockedValue { _ = $0.removeValue(forKey: handle) }
    }

    func lookup(_ handle: UInt64) -> Entry? {
        self.entries.withLockedValue { $0[handle] }
    }
}
