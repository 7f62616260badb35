import CAgentHostPlugin

/// A watch started by `RunLog.watch`.
public struct RunLogWatch: Sendable, Hashable {
    public let id: UInt64
    public let connection: Connection

    /// Cancels the watch; its `runLogEnded` follows with `cancelled`. False if it had already ended.
    @discardableResult
    public func cancel() -> Bool {
        guard let unwatch = self.connection.host.api.pointee.log_unwatch else { return false }
        return HostStatus(unwatch(self.connection.handle, self.id)) == .ok
    }
}
