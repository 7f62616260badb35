import Foundation
import Glibc

/// The `agenthost` binary as an operator runs it: a child process whose listening line tells the port.
final class ServerProcess: @unchecked Sendable {
    // @unchecked: used from one test task at a time.
    let process = Process()
    let port: Int
    let listeningLine: String
    private let errors: Pipe

    /// The folder SwiftPM builds products into: the test bundle sits in it (`swift build` puts the `agenthost`
    /// binary and the plugins' .so files beside it).
    static let buildDirectory: String = {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().path
    }()

    struct NotBuilt: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(self.path) is missing: run `swift build` before `swift test` (see README)" }
    }

    static func product(_ name: String) throws -> String {
        let path = "\(buildDirectory)/\(name)"
        guard FileManager.default.fileExists(atPath: path) else { throw NotBuilt(path: path) }
        return path
    }

    init(arguments: [String]) throws {
        self.process.executableURL = URL(fileURLWithPath: try Self.product("agenthost"))
        self.process.arguments = ["serve", "--listen", "127.0.0.1:0"] + arguments
        let output = Pipe()
        self.errors = Pipe()
        self.process.standardOutput = output
        self.process.standardError = self.errors
        try self.process.run()
        // The first stdout line is the listening line; read it byte by byte (no buffering past it).
        var line = [UInt8]()
        let handle = output.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            guard let first = byte.first else { break }
            if first == UInt8(ascii: "\n") { break }
            line.append(first)
        }
        self.listeningLine = String(decoding: line, as: UTF8.self)
        guard let colon = self.listeningLine.lastIndex(of: ":"),
            let port = Int(self.listeningLine[self.listeningLine.index(after: colon)...])
        else {
            self.process.terminate()
            let log = String(decoding: self.errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw NotBuilt(path: "listening line (got '\(self.listeningLine)'; stderr: \(log))")
        }
        self.port = port
    }

    func signal(_ signal: Int32) { kill(self.process.processIdentifier, signal) }

    /// Waits for the process to exit and returns its status and everything it logged.
    func waitForExit() -> (status: Int32, log: String) {
        let log = String(decoding: self.errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        self.process.waitUntilExit()
        return (self.process.terminationStatus, log)
    }

    deinit {
        if self.process.isRunning { self.process.terminate() }
    }
}
