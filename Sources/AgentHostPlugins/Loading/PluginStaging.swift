import Glibc
import Synchronization

/// A private directory (mode 0700) the host copies each plugin file into, under a unique name, before dlopen.
///
/// Measured (../shared/design/plugin-abi.md): glibc hands back the old handle for a path it has loaded, and
/// overwriting a mapped .so in place crashes the process. Mapping only private, never-reused copies means an
/// operator can `cp` a new build over the live file at any time: the host never maps a file in the plugin directory.
public final class PluginStaging: Sendable {
    public let directory: String
    private let counter = Atomic<Int>(0)

    /// Creates a fresh staging directory under `parent` (default: $TMPDIR or /tmp).
    public init(parent: String? = nil) throws(PluginLoadError) {
        var base = parent ?? (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp")
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        if base.isEmpty { base = "/tmp" }
        var template = Array("\(base)/agenthost-staging-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw PluginLoadError(.staging, "cannot create a staging directory in \(base): \(String(cString: strerror(errno)))")
        }
        self.directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
        guard let dir = opendir(self.directory) else { return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { unlink("\(self.directory)/\(name)") }
        }
        closedir(dir)
        rmdir(self.directory)
    }
}
