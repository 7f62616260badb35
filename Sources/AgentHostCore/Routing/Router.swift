import Synchronization

/// Holds the route table in service. Readers take a snapshot per upgrade (not per message); a reload publishes a
/// complete new table with one swap, so a request sees either the old table or the new one, never a mix.
public final class Router: Sendable {
    private let table: Mutex<RouteTable>

    public init(_ table: RouteTable = RouteTable()) {
        self.table = Mutex(table)
    }

    public var current: RouteTable { self.table.withLock { $0 } }

    public func publish(_ table: RouteTable) {
        self.table.withLock { $0 = table }
    }
}

extension StringProtocol {
    /// The path of a request target: everything before `?`.
    var requestPath: SubSequence {
        if let query = self.firstIndex(of: "?") { return self[..<query] }
        return self[...]
    }
}
