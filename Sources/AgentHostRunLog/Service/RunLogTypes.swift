import AgentHostCore
import Glibc
import NIOCore

/// Who owns a log: an identity (issuer and subject), or nobody named (anonymous: then a secret's hash).
public struct RunLogOwner: Sendable, Hashable {
    public var issuer: String
    public var subject: String

    public init(issuer: String, subject: String) {
        self.issuer = issuer
        self.subject = subject
    }

    public static let anonymous = RunLogOwner(issuer: "", subject: "")
    /// No subject names nobody (a public route without credentials, or a JWT without `sub`): two such callers are
    /// told apart by their secrets only, whatever their issuer.
    public var isAnonymous: Bool { self.subject.isEmpty }
}

/// Why a run log call did nothing: the ABI's statuses.
public enum RunLogFailure: Error, Sendable, Equatable {
    case notFound
    case exists
    case closed
    case badArgument
    case unavailable
}

/// A connection a watch delivers to (implemented by the plugin layer over `WebSocketConnection`).
public protocol RunLogWatchTarget: AnyObject, Sendable {
    /// The connection's handle (0 is never valid).
    var handle: UInt64 { get }
    var eventLoop: any EventLoop { get }
    /// On the loop: delivers events from `next` (nil: no more) while the outbound queue is below its high-water
    /// mark, all with one flush. An event taken from `next` is always delivered.
    func deliver(_ next: () -> DeferredEvent?) -> PacedDelivery
    /// On the loop: whether the outbound queue is above its high-water mark (a watch reads no more from the store
    /// for it until `whenWritable`).
    var isBlocked: Bool { get }
    /// On the loop: calls `body` once, on the loop, when the outbound queue is writable again or the connection
    /// closed.
    func whenWritable(_ body: @escaping @Sendable () -> Void)
    /// On the loop: delivers the watch's last event, also after the connection closed (then as cancelled, after
    /// on_close).
    func deliverLast(_ event: DeferredEvent)
}

/// Where a log's signals go: the writer's plugin instance. Called on a host thread, one at a time per log.
public typealias RunLogSignalSink = @Sendable (_ event: DeferredEvent) -> Void

/// What log_info reports.
public struct RunLogInfo: Sendable, Equatable {
    public var ended: Bool
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    public var createdMilliseconds: Int64
    public var endedMilliseconds: Int64
    public var status: String
}

/// The clock the service reads (tests inject one).
public protocol RunLogClock: Sendable {
    func nowMilliseconds() -> Int64
}

/// Wall-clock time.
public struct SystemRunLogClock: RunLogClock {
    public init() {}

    public func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
