import Foundation

/// Compiles plugins from C at test time (the real echo plugin's source and the failure fixtures), into private
/// directories laid out the way the loader expects.
enum PluginFixtures {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let headerDirectory = repositoryRoot.appendingPathComponent("plugin-sdk/c/include").path
    static let fixtureDirectory = repositoryRoot.appendingPathComponent("Tests/AgentHostIntegrationTests/Fixtures").path
    static let echoSource = repositoryRoot.appendingPathComponent("Plugins/echo/echo.c").path

    struct CompileError: Error, CustomStringConvertible {
        var description: String
    }

    /// A new empty directory with mode 0755 (the loader refuses group/world-writable ones).
    static func makeDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("agenthost-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        return path
    }

    /// Compiles `source` into `directory/output` as a shared object with mode 0755.
    @discardableResult
    static func compile(source: String, into directory: String, as output: String, defines: [String] = [])
        async throws -> String
    {
        try await blocking { try self.compileNow(source: source, into: directory, as: output, defines: defines) }
    }

    private static func compileNow(source: String, into directory: String, as output: String, defines: [String])
        throws -> String
    {
        let destination = "\(directory)/\(output)"
        try self.runCompiler(["cc", "-shared", "-fPIC", "-O1", "-pthread", "-I", headerDirectory, "-I", fixtureDirectory]
                             + defines.map { "-D\($0)" } + ["-o", destination, source], producing: destination)
        return destination
    }

    /// Runs a compiler (through `env`, from PATH) and makes its output 0755; its stderr is the error if it fails.
    private static func runCompiler(_ arguments: [String], producing destination: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw CompileError(description: "\(arguments.joined(separator: " ")) failed: \(message)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: destination)
    }

    /// Compiles a fixture from Tests/AgentHostIntegrationTests/Fixtures.
    @discardableResult
    static func compileFixture(_ name: String, into directory: String, as output: String? = nil) async throws -> String {
        try await self.compile(source: "\(fixtureDirectory)/\(name).c", into: directory, as: output ?? "\(name).so")
    }

    /// Compiles the versioned echo fixture; its replies start with "<tag>:".
    @discardableResult
    static func compileVersionedEcho(tag: String, into directory: String, as output: String) async throws -> String {
        try await self.compile(source: "\(fixtureDirectory)/versioned_echo.c", into: directory, as: output,
                         defines: ["VERSION_TAG=\"\(tag)\""])
    }

    /// Compiles a Swift fixture (`Fixtures/NAME.swift`) into a shared object with `swiftc`, with its own copy of the
    /// Swift runtime when `staticStdlib` (what the loader must refuse).
    @discardableResult
    static func compileSwiftFixture(_ name: String, into directory: String, as output: String, staticStdlib: Bool)
        async throws -> String
    {
        let destination = "\(directory)/\(output)"
        try await blocking {
            try self.runCompiler(["swiftc", "-emit-library"] + (staticStdlib ? ["-static-stdlib"] : [])
                                 + ["-module-name", "SwiftEntryFixture", "-o", destination,
                                    "\(fixtureDirectory)/\(name).swift"], producing: destination)
        }
        return destination
    }

    /// The real echo plugin compiled by cc and linked by swiftc, as SwiftPM builds a C plugin product.
    @discardableResult
    static func compileEchoLinkedBySwiftc(into directory: String) async throws -> String {
        let object = "\(directory)/echo-swiftc.o"
        let destination = "\(directory)/echo-swiftc.so"
        try await blocking {
            try self.runCompiler(["cc", "-c", "-fPIC", "-O1", "-I", headerDirectory, "-o", object, echoSource], producing: object)
            try self.runCompiler(["swiftc", "-emit-library", "-o", destination, object], producing: destination)
        }
        return destination
    }

    /// Compiles the real echo plugin from Plugins/echo/echo.c.
    @discardableResult
    static func compileEcho(into directory: String, as output: String = "echo.so") async throws -> String {
        try await self.compile(source: echoSource, into: directory, as: output)
    }
}
