/// Why a plugin file was refused. Each message names what failed and, where it helps, what to do.
public struct PluginLoadError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        case unsafeFile
        case staging
        case dlopen
        case missingEntry
        /// A Swift plugin that carries its own Swift runtime (see `SwiftBuild`).
        case swiftRuntime
        case abiVersion
        case descriptor
        case instanceCreate
        case routeConflict
        case duplicateName
    }

    public let kind: Kind
    public let description: String
    /// For a route or name conflict: the name and routes the file claims, so the conflict can be checked again on
    /// the next reload (the other file may have gone) without loading the file again.
    public var claims: PluginClaims?

    init(_ kind: Kind, _ description: String, claims: PluginClaims? = nil) {
        self.kind = kind
        self.description = description
        self.claims = claims
    }
}

/// What a plugin file claims: its name and its routes.
public struct PluginClaims: Sendable, Equatable {
    public let name: String
    public let routes: [String]

    /// Why these claims cannot be served beside `routeOwners` and `loadedNames`, or nil when they can.
    public func conflict(routeOwners: [String: String], loadedNames: Set<String>) -> PluginLoadError? {
        if loadedNames.contains(self.name) {
            return PluginLoadError(.duplicateName, "another loaded plugin is already named '\(self.name)'", claims: self)
        }
        for route in self.routes {
            if let owner = routeOwners[route] {
                return PluginLoadError(.routeConflict, "route \(route) is already served by plugin '\(owner)'",
                                       claims: self)
            }
        }
        return nil
    }
}
