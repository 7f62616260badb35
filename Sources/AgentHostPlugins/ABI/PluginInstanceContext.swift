import Logging

/// The host's side of one plugin instance, handed to the plugin as the opaque `agenthost_instance_ctx *`:
/// it names the plugin in the log lines the plugin writes through `log()`.
final class PluginInstanceContext: Sendable {
    let name: String
    let logger: Logger

    init(name: String, logger: Logger) {
        self.name = name
        var logger = logger
        logger[metadataKey: "plugin"] = "\(name)"
        self.logger = logger
    }

    /// The pointer given to the plugin. The host keeps the context alive as long as the plugin is loaded.
    var opaquePointer: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ pointer: OpaquePointer) -> PluginInstanceContext {
        Unmanaged<PluginInstanceContext>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}
