import AgentHostCore
import CAgentHostPlugin

/// Lays out a connection's open info as one borrowed `agenthost_open_info_v1`: every string is copied into one
/// contiguous buffer that lives exactly as long as the `on_open` call.
enum OpenInfoBuffer {
    static func with<R>(_ info: ConnectionInfo, _ body: (UnsafePointer<agenthost_open_info_v1>) -> R) -> R {
        let fields = [
            info.route, info.requestTarget, info.remoteAddress, info.subprotocol ?? "",
            info.identity.subject, info.identity.issuer, info.identity.scopes.joined(separator: " "),
            info.identity.claimsJSON,
        ]
        var storage: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in fields {
            let start = storage.count
            storage.append(contentsOf: field.utf8)
            ranges.append(start..<storage.count)
        }
        storage.append(0)  // so the base address is never nil
        return storage.withUnsafeBufferPointer { base in
            func bytes(_ i: Int) -> agenthost_bytes {
                agenthost_bytes(ptr: base.baseAddress! + ranges[i].lowerBound, len: ranges[i].count)
            }
            var openInfo = agenthost_open_info_v1(
                struct_size: UInt32(MemoryLayout<agenthost_open_info_v1>.size),
                route: bytes(0), request_target: bytes(1), remote_address: bytes(2), subprotocol: bytes(3),
                identity_subject: bytes(4), identity_issuer: bytes(5), identity_scopes: bytes(6),
                identity_claims_json: bytes(7))
            return withUnsafePointer(to: &openInfo) { body($0) }
        }
    }
}
