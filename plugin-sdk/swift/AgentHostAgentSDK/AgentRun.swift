import AgentHostPluginSDK

/// One run of an agent route, as its author sees it: what to do (`task`), who asked (`identity`), and the calls
/// that stream events to the client. The SDK does the framing, `seq`, buffering for resume, `stop`, timeouts and
/// backpressure.
///
/// When the run is stopped (the client's `stop`, a timeout, the plugin going away) the task running `run(_:)` is
/// cancelled and every call here throws `CancellationError`: let it propagate.
public struct AgentRun: Sendable {
    public let id: String
    public let task: AgentTask
    /// The client's `team_config` as JSON text, only if the operator set `allow_client_team_config`.
    public let teamConfig: String?
    /// The connection that started the run (it may be gone by now: runs outlive sockets).
    public let origin: OpenInfo
    let record: RunRecord

    /// Streams one event. Suspends while the client is slow to read (backpressure).
    public func emit(_ event: AgentEvent) async throws {
        try await self.record.emit(event)
    }

    /// Asks the client for input: sends `input_request` in stream order (after every event emitted before it) and
    /// returns the client's `input_response`. The route's input timeout ends the run with
    /// `completion {status: "timeout"}`; `stop` ends it with `cancelled`. Either way this throws.
    ///
    /// `event` is the UserInputRequestedEvent to send (AutoGen's own, from a bridge); when nil, the SDK makes one.
    public func requestInput(prompt: String, source: String = "user", requestID: String = AutoGenEvent.newID(),
                             event: AgentEvent? = nil) async throws -> String
    {
        let event = event ?? AutoGenEvent.userInputRequested(source: source, requestID: requestID)
        return try await self.record.requestInput(prompt: prompt, requestID: requestID, event: event)
    }
}

/// How a run ended, as its author reports it. The SDK turns it into the run's one `result` frame.
public enum AgentRunResult: Sendable {
    /// The SDK builds AutoGen's TaskResult from the run's `.message` events, as AutoGen does.
    case completed(stopReason: String?)
    /// A TaskResult already in AutoGen's JSON form (`{"messages": [...], "stop_reason": ...}`), passed through.
    case taskResult(json: String)
}

/// A run that failed: ends it with `completion {status: "error"}` carrying `message`.
public struct AgentRunError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}
