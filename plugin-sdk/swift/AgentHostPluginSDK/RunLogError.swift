/// A run log call that failed: which one and what the host answered.
public struct RunLogError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HostStatus
    public let operation: String

    init(_ status: HostStatus, _ operation: String) {
        self.status = status
        self.operation = operation
    }

    public var description: String {
        if self.status == .unavailable { return "run log \(self.operation): unavailable (the host cannot serve it now, or is older than ABI 1.1)" }
        return "run log \(self.operation): \(self.status)"
    }
}
