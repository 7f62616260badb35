import AgentHostSettings
import Foundation

/// The config files worker processes read (`--workers N`), kept by the supervisor in the workers' private
/// directory: the file as the supervisor started with it, and the file it last accepted on SIGHUP.
///
/// Workers do not read the operator's `--config` path: a worker started again after a crash would read whatever
/// the file holds now, and a file the last SIGHUP refused would keep it from starting (a crash loop), while one
/// that changed `listen` or `tls_cert` would give it an address or scheme its siblings do not have. A worker
/// takes the accepted file, with the restart-only settings of the started one (`ServeSettings.keepingRestartOnly`).
enum WorkerConfigSnapshot {
    static func startedPath(directory: String) -> String { directory + "/config-started.json" }
    static func acceptedPath(directory: String) -> String { directory + "/config.json" }
    static func stagedPath(directory: String) -> String { directory + "/config-staged.json" }

    /// Copies the operator's file to the staging path, so what is checked is what workers will read even if the
    /// file changes meanwhile. Returns the staged path.
    static func stage(_ source: String, directory: String) throws -> String {
        let staged = Self.stagedPath(directory: directory)
        let data = try ServeSettings.readConfigFile(at: source)
        try data.write(to: URL(fileURLWithPath: staged), options: [.atomic])
        return staged
    }

    /// Runs `body` (which reads the staged copy); its errors name the operator's file, the one they can fix.
    static func namingTheOperatorsFile<T>(_ source: String, staged: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SettingsError {
            throw SettingsError(error.description.replacingOccurrences(of: staged, with: source))
        }
    }

    /// Makes the staged file the one workers read (an atomic rename: a worker starting meanwhile reads the old
    /// file or the new one, never half of one).
    static func accept(directory: String) throws {
        let staged = Self.stagedPath(directory: directory)
        guard rename(staged, Self.acceptedPath(directory: directory)) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: staged])
        }
    }

    /// Makes the staged file both the started and the accepted one (before the first worker starts).
    static func acceptAtStart(directory: String) throws {
        try FileManager.default.copyItem(atPath: Self.stagedPath(directory: directory),
                                         toPath: Self.startedPath(directory: directory))
        try Self.accept(directory: directory)
    }
}
