import Foundation

/// The example plugins `swift build` made: they sit beside the test bundle in the build folder.
enum BuiltPlugin {
    static func path(_ product: String) -> String {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().appendingPathComponent("lib\(product).so").path
    }
}
