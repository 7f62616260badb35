/// Routes ending in `/*` are patterns: `/agents/*` serves every path below `/agents/` (not `/agents/` itself).
/// One definition for the route table and for per-route policies.
public enum RoutePattern {
    /// The prefix a pattern route matches (`/agents/`), or nil for an exact route.
    public static func prefix(of route: String) -> Substring? {
        route.hasSuffix("/*") ? route.dropLast() : nil
    }

    public static func matches(_ route: String, path: some StringProtocol) -> Bool {
        guard let prefix = self.prefix(of: route) else { return route == path }
        return path.count > prefix.count && path.hasPrefix(prefix)
    }

    /// The most specific of `routes` for `path`: the path itself, else the longest pattern above it.
    public static func bestMatch(for path: some StringProtocol, in routes: some Sequence<String>) -> String? {
        var best: String?
        for route in routes where self.matches(route, path: path) {
            if self.prefix(of: route) == nil { return route }
            if route.count > best?.count ?? 0 { best = route }
        }
        return best
    }
}
