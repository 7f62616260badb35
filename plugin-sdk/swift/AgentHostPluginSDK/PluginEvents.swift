import CAgentHostPlugin

/// Dispatches on_event by kind. Timers and posts carry a `DeferredWork`, run log watches a `WatchBox`, and a signal
/// no pointer of ours at all (its `data` is a token, see `RunLogSignals`): reading `data` as the wrong type would be
/// a use of freed or foreign memory, so the kind decides, never the pointer.
enum PluginEvents {
    static func dispatch(instanceContext: OpaquePointer?, _ event: UnsafePointer<agenthost_event_v1>) {
        let kind = event.pointee.kind
        switch kind {
        case agenthost_event_kind_t(AGENTHOST_EVENT_POSTED), agenthost_event_kind_t(AGENTHOST_EVENT_TIMER):
            guard let data = event.pointee.data else { return }
            // Every timer and post hands its closure back exactly once, fired or cancelled: release it here.
            let work = Unmanaged<DeferredWork>.fromOpaque(data).takeRetainedValue()
            if event.pointee.cancelled == 0 { work.body() }
        case agenthost_event_kind_t(AGENTHOST_EVENT_LOG_ENTRY):
            guard Self.hasLogFields(event), let data = event.pointee.data else { return }
            let box = Unmanaged<WatchBox>.fromOpaque(data).takeUnretainedValue()
            box.watcher.runLog(entry: event.pointee.log_seq, bytes: Self.bytes(event.pointee.log_bytes))
        case agenthost_event_kind_t(AGENTHOST_EVENT_LOG_END):
            guard let data = event.pointee.data else { return }
            // The watch's one LOG_END: the box is released whatever it says.
            let box = Unmanaged<WatchBox>.fromOpaque(data).takeRetainedValue()
            let hasFields = Self.hasLogFields(event)
            let status = hasFields ? String(decoding: Self.bytes(event.pointee.log_bytes), as: UTF8.self) : ""
            box.watcher.runLogEnded(lastSeq: hasFields ? event.pointee.log_seq : 0, status: status,
                                    cancelled: event.pointee.cancelled != 0)
        case agenthost_event_kind_t(AGENTHOST_EVENT_LOG_SIGNAL):
            guard Self.hasLogFields(event) else { return }
            RunLogSignals.deliver(context: instanceContext, handle: event.pointee.id, signalData: event.pointee.data,
                                  bytes: Self.bytes(event.pointee.log_bytes))
        default:
            return  // a kind from a newer host: nothing of ours to release
        }
    }

    private static func hasLogFields(_ event: UnsafePointer<agenthost_event_v1>) -> Bool {
        Int(event.pointee.struct_size) >= MemoryLayout<agenthost_event_v1>.offset(of: \.log_bytes)!
            + MemoryLayout<agenthost_bytes>.size
    }

    private static func bytes(_ raw: agenthost_bytes) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: raw.ptr, count: raw.ptr == nil ? 0 : raw.len)
    }
}
