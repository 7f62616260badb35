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

    /// Copies `source` to a new unique file in the staging directory and returns its path.
    public func stage(_ source: String, name: String) throws(PluginLoadError) -> String {
        let serial = self.counter.add(1, ordering: .relaxed).newValue
        let destination = "\(self.directory)/\(serial)-\(name)"
        let input = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard input >= 0 else { throw PluginLoadError(.staging, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o500)
        guard output >= 0 else {
            throw PluginLoadError(.staging, "cannot create \(destination): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count == 0 { break }
            guard count > 0 else { throw PluginLoadError(.staging, "read failed: \(String(cString: strerror(errno)))") }
            var written = 0
            while written < count {
                let n = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, count - written) }
                guard n > 0 else { throw PluginLoadError(.staging, "write failed: \(String(cString: strerror(errno)))") }
                written += n
            }
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
