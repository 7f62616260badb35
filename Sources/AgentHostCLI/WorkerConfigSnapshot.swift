import AgentHostSettings
import Foundation
import Synchronization

/// The config files worker processes read (`--workers N`), kept by the supervisor: the file as the supervisor
/// started with it, and the file it last accepted on SIGHUP. They live in the supervisor's memory and are written
/// into the workers' private directory before each worker starts (a /tmp cleaner may have aged out a copy written
/// days ago) and when a reload is accepted.
///
/// Workers do not read the operator's `--config` path: a worker started again after a crash would read whatever
/// the file holds now, and a file the last SIGHUP refused would keep it from starting (a crash loop), while one
/// that changed `listen` or `tls_cert` would give it an address or scheme its siblings do not have. A worker
/// takes the accepted file, with the restart-only settings of the started one (`ServeSettings.keepingRestartOnly`).
final class WorkerConfigSnapshot: Sendable {
    static func startedPath(directory: String) -> String { directory + "/config-started.json" }
    static func acceptedPath(directory: String) -> String { directory + "/config.json" }
    static func stagedPath(directory: String) -> String { directory + "/config-staged.json" }

    let source: String
    private let files = Mutex<(started: Data, accepted: Data)?>(nil)

    init(source: String) {
        self.source = source
    }

    /// Copies the operator's file to the staging path and checks the copy with `check`, so what is checked is
    /// what workers will read even if the file changes meanwhile. Errors name the operator's file; a refused copy
    /// is removed.
    func stage<T>(directory: String, check: (String) throws -> T) throws -> (bytes: Data, checked: T) {
        let staged = Self.stagedPath(directory: directory)
        do {
            let bytes = try ServeSettings.readConfigFile(at: self.source)
            try bytes.write(to: URL(fileURLWithPath: staged), options: [.atomic])
            return (bytes, try check(staged))
        } catch let error as SettingsError {
            try? FileManager.default.removeItem(atPath: staged)
            throw SettingsError(error.description.replacingOccurrences(of: staged, with: self.source))
        } catch {
            try? FileManager.default.removeItem(atPath: staged)
            throw error
        }
    }

    /// `bytes` (staged and checked) become the accepted file, at start also the started one, and are written.
    func accept(_ bytes: Data, directory: String, atStart: Bool = false) throws {
        self.files.withLock { files in
            files = (started: atStart ? bytes : (files?.started ?? bytes), accepted: bytes)
        }
        try? FileManager.default.removeItem(atPath: Self.stagedPath(directory: directory))
        try self.write(directory: directory)
    }

    /// Writes both files (each atomically: a worker starting meanwhile reads the old file or the new one, never
    /// half of one). Before each worker starts, and on accepting.
    func write(directory: String) throws {
        guard let files = self.files.withLock({ $0 }) else { return }
        try files.started.write(to: URL(fileURLWithPath: Self.startedPath(directory: directory)), options: [.atomic])
        try files.accepted.write(to: URL(fileURLWithPath: Self.acceptedPath(directory: directory)), options: [.atomic])
    }
}
