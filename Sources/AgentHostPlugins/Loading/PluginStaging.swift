import Glibc
import Synchronization

/// A private directory (mode 0700) the host copies each plugin file into, under a unique name, before dlopen.
///
/// Measured (../shared/design/plugin-abi.md): glibc hands back the old handle for a path it has loaded, and
/// overwriting a mapped .so in place crashes the process. Mapping only private, never-reused copies means an
/// operator can `cp` a new build over the live file at any time: the host never maps a file in the plugin directory.
///
/// A host that dies without cleaning up (SIGKILL, a crash, OOM) leaves its directory behind. Each directory holds
/// a `.lock` its host keeps `flock`ed while it lives; a new host removes the directories whose lock no one holds.
public final class PluginStaging: Sendable {
    public let directory: String
    private let counter = Atomic<Int>(0)
    /// Held open (and locked) for the life of this staging directory.
    private let lock: Int32
    private let removed = Atomic<Bool>(false)

    static let prefix = "agenthost-staging-"

    /// Creates a fresh staging directory under `parent` (default: $TMPDIR or /tmp), after removing the ones that
    /// hosts which are gone left there.
    public init(parent: String? = nil) throws(PluginLoadError) {
        var base = parent ?? (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp")
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        if base.isEmpty { base = "/tmp" }
        Self.removeAbandoned(in: base)
        var template = Array("\(base)/\(Self.prefix)XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw PluginLoadError(.staging, "cannot create a staging directory in \(base): \(String(cString: strerror(errno)))")
        }
        self.directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.lock = open("\(self.directory)/.lock", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard self.lock >= 0, flock(self.lock, LOCK_EX | LOCK_NB) == 0 else {
            let reason = String(cString: strerror(errno))
            if self.lock >= 0 { close(self.lock) }
            Self.removeDirectory(self.directory)
            throw PluginLoadError(.staging, "cannot lock \(self.directory)/.lock: \(reason)")
        }
    }

    /// Removes the staging directories under `base` that belong to this user and whose lock nobody holds. A
    /// directory less than a minute old is left alone: its host may be between creating the lock file and locking
    /// it. One without a lock file is an older host's: removed only when an hour old.
    static func removeAbandoned(in base: String) {
        let candidates = (DirectoryEntries.names(in: base) ?? []).filter { $0.hasPrefix(Self.prefix) }.map { "\(base)/\($0)" }
        for path in candidates {
            var status = stat()
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR, status.st_uid == geteuid(),
                time(nil) - status.st_mtim.tv_sec > 60
            else { continue }
            let lock = open("\(path)/.lock", O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            if lock >= 0 {
                defer { close(lock) }
                guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { continue }  // its host is alive
            } else {
                guard errno == ENOENT, time(nil) - status.st_mtim.tv_sec > 3600 else { continue }
            }
            Self.removeDirectory(path)
        }
    }

    /// Writes `bytes` (a plugin file as read) to a new unique file in the staging directory; returns its path.
    public func stage(_ bytes: [UInt8], name: String) throws(PluginLoadError) -> String {
        let serial = self.counter.add(1, ordering: .relaxed).newValue
        let destination = "\(self.directory)/\(serial)-\(name)"
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o500)
        guard output >= 0 else {
            throw PluginLoadError(.staging, "cannot create \(destination): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(output, $0.baseAddress! + written, bytes.count - written) }
            guard n > 0 else {
                if n < 0 && errno == EINTR { continue }
                throw PluginLoadError(.staging, "write to \(destination) failed: \(String(cString: strerror(errno)))")
            }
            written += n
        }
        return destination
    }

    /// Removes the staged copies (at shutdown; the mappings stay valid after unlink).
    public func removeAll() {
        guard !self.removed.exchange(true, ordering: .relaxed) else { return }
        Self.removeDirectory(self.directory)
        close(self.lock)
    }

    private static func removeDirectory(_ path: String) {
        for name in DirectoryEntries.names(in: path) ?? [] { unlink("\(path)/\(name)") }
        rmdir(path)
    }
}
