import AgentHostCore
import CAgentHostPlugin

/// Lays out an upgrade request as one borrowed `agenthost_upgrade_request_v1` (the way `OpenInfoBuffer` does the open
/// info): every string in one contiguous buffer, headers and subprotocols in arrays beside it, all living exactly as
/// long as the `on_upgrade` call.
enum UpgradeRequestBuffer {
    static func with<R>(_ request: UpgradeRequest, _ body: (UnsafePointer<agenthost_upgrade_request_v1>) -> R) -> R {
        var storage: [UInt8] = []
        func append(_ text: String) -> Range<Int> {
            let start = storage.count
            storage.append(contentsOf: text.utf8)
            return start..<storage.count
        }
        let fixed = [
            request.route, request.requestTarget, request.remoteAddress, request.identity.subject,
            request.identity.issuer, request.identity.scopes.joined(separator: " "), request.identity.claimsJSON,
        ].map(append)
        let headers = request.headers.map { (append($0.name), append($0.value)) }
        let subprotocols = request.subprotocols.map(append)
        storage.append(0)  // so the base address is never nil
        return storage.withUnsafeBufferPointer { base in
            func bytes(_ range: Range<Int>) -> agenthost_bytes {
                agenthost_bytes(ptr: base.baseAddress! + range.lowerBound, len: range.count)
            }
            let headerArray = headers.map { agenthost_header_v1(name: bytes($0.0), value: bytes($0.1)) }
            let subprotocolArray = subprotocols.map(bytes)
            return headerArray.withUnsafeBufferPointer { headerPointer in
                subprotocolArray.withUnsafeBufferPointer { subprotocolPointer in
                    var cRequest = agenthost_upgrade_request_v1(
                        struct_size: UInt32(MemoryLayout<agenthost_upgrade_request_v1>.size),
                        route: bytes(fixed[0]), request_target: bytes(fixed[1]), remote_address: bytes(fixed[2]),
                        headers: headerPointer.baseAddress, header_count: headerArray.count,
                        subprotocols: subprotocolPointer.baseAddress, subprotocol_count: subprotocolArray.count,
                        identity_subject: bytes(fixed[3]), identity_issuer: bytes(fixed[4]),
                        identity_scopes: bytes(fixed[5]), identity_claims_json: bytes(fixed[6]))
                    return withUnsafePointer(to: &cRequest) { body($0) }
                }
            }
        }
    }
}
