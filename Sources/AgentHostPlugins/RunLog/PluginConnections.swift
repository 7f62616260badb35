import AgentHostRunLog
import Synchronization

/// What the run log functions need to know about a plugin connection: whose instance it belongs to, its route, and
/// who is behind it. Registered when on_open is about to run, removed when the session closes.
final class PluginConnections: Sendable {
    struct Entry: Sendable {
        var instance: UInt64
        var route: String
        var owner: RunLogOwner
    }

    private let entries = Mutex<[UInt64: Entry]>([:])

    func register(_ handle: UInt64, _ entry: Entry) {
        self.entries.withLock { $0[handle] = entry }
    }

    func remove(_ handle: UInt64) {
        self.entries.withLock { _ = $0.removeValue(forKey: handle) }
    }

    func lookup(_ handle: UInt64) -> Entry? {
        self.entries.withLock { $0[handle] }
    }
}
