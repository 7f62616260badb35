/// Why a plugin file was refused. Each message names what failed and, where it helps, what to do.
public struct PluginLoadError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        case unsafeFile
        case staging
        case dlopen
        case missingEntry
        case abiVersion
        case descriptor
        case instanceCreate
        case routeConflict
        case duplicateName
    }

    public let kind: Kind
    public let description: String

    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
