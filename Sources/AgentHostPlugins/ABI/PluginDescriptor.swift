import CAgentHostPlugin

/// A plugin's `agenthost_plugin_v1`, checked field by field before anything in it is called.
struct PluginDescriptor: @unchecked Sendable {
    // @unchecked: the descriptor is static, immutable data of a library that is never unloaded.
    let raw: UnsafePointer<agenthost_plugin_v1>
    let name: String
    let version: String
    let routes: [String]

    /// (1.2) Called when the instance's generation starts draining; nil when absent or the descriptor predates it.
    let onDrain: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?
    /// (1.2) Decides on upgrades before the 101; nil when absent or the descriptor predates it.
    let onUpgrade: (@convention(c) (UnsafeMutableRawPointer?, UnsafePointer<agenthost_upgrade_request_v1>?,
                                    UnsafeMutablePointer<agenthost_upgrade_response_v1>?) -> agenthost_status_t)?

    static let minimumSize = MemoryLayout<agenthost_plugin_v1>.offset(of: \agenthost_plugin_v1.on_close)!
        + MemoryLayout<UnsafeRawPointer>.size

    /// Whether a descriptor of `size` bytes includes the field at `field` (an optional callback of a later minor).
    static func covers(_ size: Int, _ field: PartialKeyPath<agenthost_plugin_v1>) -> Bool {
        size >= MemoryLayout<agenthost_plugin_v1>.offset(of: field)! + MemoryLayout<UnsafeRawPointer>.size
    }

    init(_ raw: UnsafePointer<agenthost_plugin_v1>) throws(PluginLoadError) {
        // Read the size and version first: nothing past struct_size may be touched.
        let size = Int(raw.pointee.struct_size)
        guard size >= Self.minimumSize else {
            throw PluginLoadError(.descriptor, "descriptor is \(size) bytes, a version-1 descriptor needs at least "
                                  + "\(Self.minimumSize): rebuild the plugin against the current agenthost_plugin.h")
        }
        guard raw.pointee.abi_major == UInt32(AGENTHOST_ABI_MAJOR) else {
            throw PluginLoadError(.abiVersion, "descriptor says ABI major \(raw.pointee.abi_major), host speaks 1")
        }
        let d = raw.pointee
        guard let namePointer = d.name, let versionPointer = d.version else {
            throw PluginLoadError(.descriptor, "descriptor has no name or version")
        }
        let name = String(cString: namePointer)
        guard !name.isEmpty, name.utf8.count <= 64,
            name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 95 })
        else {
            throw PluginLoadError(.descriptor, "plugin name '\(name)' must be 1-64 characters of [a-z0-9_-]")
        }
        guard d.route_count >= 1, d.route_count <= 64, let routePointers = d.routes else {
            throw PluginLoadError(.descriptor, "descriptor must list 1 to 64 routes (has \(d.route_count))")
        }
        var routes: [String] = []
        for index in 0..<d.route_count {
            guard let route = routePointers[index].map({ String(cString: $0) }),
                route.hasPrefix("/"), route.utf8.count <= 256, !route.contains("?"), !route.contains(" ")
            else {
                throw PluginLoadError(.descriptor, "route #\(index) must be a path starting with '/'")
            }
            if routes.contains(route) { throw PluginLoadError(.descriptor, "route \(route) listed twice") }
            routes.append(route)
        }
        let required: [(String, Bool)] = [
            ("instance_create", d.instance_create != nil), ("instance_drop", d.instance_drop != nil),
            ("on_open", d.on_open != nil), ("on_message", d.on_message != nil), ("on_event", d.on_event != nil),
            ("on_close", d.on_close != nil),
        ]
        let missing = required.filter { !$0.1 }.map(\.0)
        guard missing.isEmpty else {
            throw PluginLoadError(.descriptor, "descriptor lacks the required callback\(missing.count == 1 ? "" : "s") "
                                  + missing.joined(separator: ", ") + " (NULL)")
        }
        self.onDrain = Self.covers(size, \agenthost_plugin_v1.on_drain) ? d.on_drain : nil
        self.onUpgrade = Self.covers(size, \agenthost_plugin_v1.on_upgrade) ? d.on_upgrade : nil
        self.raw = raw
        self.name = name
        self.version = String(cString: versionPointer)
        self.routes = routes
    }
}
