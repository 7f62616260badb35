import Crypto
import Glibc

/// The bytes of a plugin file as read once, vetted, with their SHA-256.
///
/// Everything after this works from these bytes: the hash the allowlist checks, the hash `/plugins` shows and the
/// staged copy that is dlopen'd are all the same bytes, even if an operator is copying a new build over the file at
/// that moment (a half-written file fails validation and is refused; the version in service keeps serving).
public struct PluginFileSnapshot: Sendable {
    public let path: String
    public let fileName: String
    public let bytes: [UInt8]
    public let sha256: String

    /// Opens the file without following links, vets what was opened (not what the path names a moment later),
    /// and reads it whole.
    public static func read(directory: String, fileName: String) throws(PluginLoadError) -> PluginFileSnapshot {
        let path = "\(directory)/\(fileName)"
        try PluginFileVetting.vetDirectory(directory)
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ELOOP {
                throw PluginLoadError(.unsafeFile, "is a symbolic link; copy the real file into the plugin directory")
            }
            throw PluginLoadError(.unsafeFile, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw PluginLoadError(.unsafeFile, "cannot stat: \(String(cString: strerror(errno)))")
        }
        try PluginFileVetting.vetFile(status)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(status.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            guard count > 0 else {
                if errno == EINTR { continue }
                throw PluginLoadError(.unsafeFile, "read failed: \(String(cString: strerror(errno)))")
            }
            bytes += chunk[..<count]
        }
        let digest = SHA256.hash(data: bytes).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
        return PluginFileSnapshot(path: path, fileName: fileName, bytes: bytes, sha256: digest)
    }
}
