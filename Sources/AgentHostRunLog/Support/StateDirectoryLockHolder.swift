import Synchronization

/// The state dir's lock for a server whose store may open late: taken at start or, when the dir could not be written
/// then, again before each attempt to open the store. The store is never opened without it: a server that runs in
/// memory because it could not create its lock must not write a store another server may hold.
public final class StateDirectoryLockHolder: Sendable {
    public let directory: String
    private let lock = Mutex<StateDirectoryLock?>(nil)

    public init(directory: String) {
        self.directory = directory
    }

    /// Takes the lock unless this process holds it already.
    public func acquire() throws {
        try self.lock.withLock { held in
            if held == nil { held = try StateDirectoryLock(directory: self.directory) }
        }
    }
}
