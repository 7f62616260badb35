import Foundation
import Testing

@testable import AgentHostScaffold

@Suite("Plugin scaffold")
struct PluginScaffoldTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let examples = repositoryRoot.appendingPathComponent("plugin-sdk/examples")

    static let sdk = repositoryRoot.appendingPathComponent("plugin-sdk").path

    static let kinds: [(PluginScaffold.Language, PluginScaffold.Kind)] = [
        (.c, .callback), (.swift, .callback), (.swift, .async), (.swift, .agent),
    ]

    static func committedExample(_ name: String) throws -> [String: String] {
        let directory = Self.examples.appendingPathComponent(name)
        var files: [String: String] = [:]
        for path in try FileManager.default.subpathsOfDirectory(atPath: directory.path)
        where !path.hasPrefix(".build") && path != "Package.resolved" {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: directory.appendingPathComponent(path).path, isDirectory: &isDirectory)
            if !isDirectory.boolValue {
                files[path] = try String(contentsOf: directory.appendingPathComponent(path), encoding: .utf8)
            }
        }
        return files
    }

    /// Made with an example's own name, a project is that example, but for where Package.swift finds the SDK.
    @Test(arguments: Self.kinds.indices)
    func aProjectWithTheExamplesNameIsTheExample(kind index: Int) throws {
        let (language, kind) = Self.kinds[index]
        let name = PluginScaffold.exampleName(language: language, kind: kind)
        let files = try PluginScaffold(name: name, language: language, kind: kind, sdkPath: Self.sdk).files()
        var expected = try Self.committedExample(name)
        expected["Package.swift"] = expected["Package.swift"]?
            .replacingOccurrences(of: PluginScaffold.exampleSDKLine, with: "?? \"\(Self.sdk)\"")
        #expect(files == expected)
    }

    /// Made with another name, nothing of the example's name, module or route is left, in paths or contents, and
    /// the new names are where the example had its own.
    @Test(arguments: Self.kinds.indices)
    func aProjectWithAnotherNameKeepsNothingOfTheExamples(kind index: Int) throws {
        let (language, kind) = Self.kinds[index]
        let example = PluginScaffold.exampleName(language: language, kind: kind)
        // A name holding the example's: replaced once, not twice.
        let scaffold = try PluginScaffold(name: "my-\(example)-2", language: language, kind: kind, sdkPath: Self.sdk)
        let files = try scaffold.files()
        let committed = try Self.committedExample(example)
        #expect(files.count == committed.count)
        let exampleModule = PluginScaffold.moduleName(of: example)
        for (path, contents) in files {
            let stripped = (path + contents).replacingOccurrences(of: scaffold.name, with: "")
                .replacingOccurrences(of: scaffold.moduleName, with: "")
            #expect(!stripped.contains(example) && !stripped.contains(exampleModule), "\(path)")
        }
        let package = try #require(files["Package.swift"])
        #expect(package.contains(#"name: "\#(scaffold.name)""#) && package.contains("?? \"\(Self.sdk)\""))
        #expect(files.values.contains { $0.contains("\"\(scaffold.route)\"") })
        #expect(files.keys.contains { $0.hasPrefix("Sources/\(scaffold.moduleName)/") })
    }

    @Test func namesFollowTheHostsRule() throws {
        for bad in ["", "Upper", "9lives", "has space", "dot.ted", String(repeating: "a", count: 65), "ümlaut"] {
            #expect(throws: PluginScaffold.Invalid.self) {
                try PluginScaffold(name: bad, language: .swift, kind: .callback, sdkPath: "/x/plugin-sdk")
            }
        }
        let scaffold = try PluginScaffold(name: "my_route-2", language: .swift, kind: .agent, sdkPath: "/opt/plugin-sdk")
        #expect(scaffold.moduleName == "MyRoute2")
        #expect(scaffold.route == "/agents/my_route-2")
        #expect(throws: PluginScaffold.Invalid.self) { try scaffold.files() }  // no examples under /opt/plugin-sdk
        // A module that would hide one the project imports ("testing" -> Testing, "foundation", the SDK's own).
        for hiding in ["testing", "foundation", "swift", "agent-host-plugin-test-kit", "c-agent-host-plugin", "agent-host", "async",
                       "agent", "swift-onone-support"] {
            #expect(throws: PluginScaffold.Invalid.self) {
                try PluginScaffold(name: hiding, language: .c, kind: .callback, sdkPath: "/x/plugin-sdk")
            }
        }
    }

    @Test func refusesWhatItCannotWriteWell() throws {
        #expect(throws: PluginScaffold.Invalid(description: "a C plugin is a callback plugin (--kind callback); for an "
                                               + "agent route in C see plugin-sdk/c/include/agenthost_agent.h and Plugins/c-agent")) {
            try PluginScaffold(name: "x", language: .c, kind: .agent, sdkPath: "/x/plugin-sdk")
        }
        #expect(throws: PluginScaffold.Invalid.self) {
            try PluginScaffold(name: "x", language: .swift, kind: .async, sdkPath: "relative/sdk")
        }
        #expect(throws: PluginScaffold.Invalid.self) {
            try PluginScaffold(name: "x", language: .swift, kind: .async, sdkPath: #"/a"b/plugin-sdk"#)
        }
        #expect(throws: PluginScaffold.Invalid.self) {
            try PluginScaffold(name: "x", language: .swift, kind: .async, sdkPath: "/a\nb/plugin-sdk")
        }
        // SwiftPM names the dependency after the folder: the project's `package: "plugin-sdk"` needs that name.
        #expect(throws: PluginScaffold.Invalid.self) {
            try PluginScaffold(name: "x", language: .swift, kind: .async, sdkPath: "/opt/agenthost/sdk")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("scaffold-\(UUID().uuidString)")
        let scaffold = try PluginScaffold(name: "x", language: .c, kind: .callback, sdkPath: Self.sdk)
        try scaffold.write(to: directory.path)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("Sources/X/x.c").path))
        #expect(throws: PluginScaffold.Invalid.self) { try scaffold.write(to: directory.path) }  // not empty
        #expect(throws: PluginScaffold.Invalid.self) {  // a file
            try scaffold.write(to: directory.appendingPathComponent("README.md").path)
        }
        try FileManager.default.removeItem(at: directory)
    }

    @Test func findsTheSDKOfTheCheckoutAHostWasBuiltIn() {
        let executable = Self.repositoryRoot.appendingPathComponent(".build/release/agenthost").path
        #expect(PluginScaffold.locateSDK(executable: executable, environment: [:])
                == Self.repositoryRoot.appendingPathComponent("plugin-sdk").resolvingSymlinksInPath().path)
        #expect(PluginScaffold.locateSDK(executable: executable, environment: ["AGENTHOST_PLUGIN_SDK": "/elsewhere"])
                == "/elsewhere")
        #expect(PluginScaffold.locateSDK(executable: "/usr/local/bin/agenthost", environment: [:]) == nil)
    }
}
