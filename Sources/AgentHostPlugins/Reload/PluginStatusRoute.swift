import AgentHostCore
import Foundation

/// `GET /plugins`: every plugin generation with its state, as JSON (admin only; see `AdminRoute`).
public struct PluginStatusRoute: AdminRoute {
    private let manager: PluginManager

    public init(manager: PluginManager) {
        self.manager = manager
    }

    public func respond() async -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let report = Report(host: .current, plugins: await self.manager.status())
        let body = (try? encoder.encode(report)) ?? Data(#"{"plugins":[]}"#.utf8)
        return String(decoding: body, as: UTF8.self)
    }

    /// `{"host": {version, abi, swift, swift_toolchain}, "plugins": [...]}`.
    struct Report: Encodable {
        let host: HostBuild
        let plugins: [PluginStatus]
    }
}
