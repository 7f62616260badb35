import AgentHostCore
import Logging
import NIOCore

/// The host's side of one plugin instance, handed to the plugin as the opaque `agenthost_instance_ctx *`:
/// it names the plugin in the log lines the plugin writes through `log()`.
final class PluginInstanceContext: Sendable {
    let name: String
    let logger: Logger
    /// Calls the host refused (BAD_ARGUMENT) are logged, at most once per 10 s per instance: a plugin sending
    /// invalid UTF-8 for every client message would otherwise leave no trace, or fill the log.
    let refusedCalls = LogRateLimiter(interval: .seconds(10))
    /// The instance's own posts and timers (ABI 1.2).
    let events: InstanceEvents

    init(name: String, logger: Logger, eventLoop: any EventLoop) {
        self.name = name
        self.events = InstanceEvents(loop: eventLoop)
        var logger = logger
        logger[metadataKey: "plugin"] = "\(name)"
        self.logger = logger
    }

    /// Logs a host call refused with BAD_ARGUMENT (rate-limited): which function, why, and on which connection.
    func callRefused(_ function: String, conn: UInt64, reason: String) {
        let (log, suppressed) = self.refusedCalls.admit()
        guard log else { return }
        var metadata: Logger.Metadata = ["function": "\(function)", "reason": "\(reason)"]
        if conn != 0 { metadata["conn"] = "\(conn)" }
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed) more since the last such line" }
        self.logger.warning("the plugin's call was refused (BAD_ARGUMENT): it had no effect", metadata: metadata)
    }

    /// The pointer given to the plugin. The host keeps the context alive as long as the plugin is loaded.
    var opaquePointer: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer) -> PluginInstanceContext {
        Unmanaged<PluginInstanceContext>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}
