/// Routes ending in `/*` serve every path below them (the host's rule: its `RoutePattern`; the SDK cannot import
/// the host, so plugins match paths with this).
public enum AgentRoutePattern {
    public static func matches(_ route: String, path: some StringProtocol) -> Bool {
        guard route.hasSuffix("/*") else { return route == path }
        let prefix = route.dropLast()
        return path.count > prefix.count && path.hasPrefix(prefix)
    }

    /// The most specific of `routes` for `path`: the path itself, else the longest pattern above it.
    public static func bestMatch(for path: some StringProtocol, in routes: some Sequence<String>) -> String? {
        var best: String?
        for route in routes where self.matches(route, path: path) {
            if !route.hasSuffix("/*") { return route }
            if route.count > best?.count ?? 0 { best = route }
        }
        return best
    }
}
