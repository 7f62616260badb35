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
    public let fingerprint: PluginFileFingerprint

    /// A plugin file larger than this is refused unread, unless configured otherwise.
    public static let defaultMaxSize = 256 << 20

    /// Opens the file without following links, vets what was opened (not what the path names a moment later),
    /// and reads it whole. Files over `maxSize` are refused unread.
    public static func read(directory: String, fileName: String, maxSize: Int = defaultMaxSize)
        throws(PluginLoadError) -> PluginFileSnapshot
    {
        switch try self.read(directory: directory, fileName: fileName, maxSize: maxSize, unlessUnchangedFrom: []) {
        case .changed(let snapshot): return snapshot
        case .unchanged: preconditionFailure("a file is never unchanged from no fingerprint")
        }
    }

    /// What a reload found: the file is still the one a known fingerprint describes (not read), or it was read.
    public enum ReadResult: Sendable {
        case unchanged(PluginFileFingerprint)
        case changed(PluginFileSnapshot)
    }

    /// The same, but the file is left unread when it is still the one a fingerprint of `known` describes: a reload
    /// looks at every file, and only changed ones are read and hashed again.
    public static func read(directory: String, fileName: String, maxSize: Int = defaultMaxSize,
                            unlessUnchangedFrom known: [PluginFileFingerprint])
        throws(PluginLoadError) -> ReadResult
    {
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
        let fingerprint = PluginFileFingerprint(status)
        if known.contains(fingerprint) { return .unchanged(fingerprint) }
        guard Int(status.st_size) <= maxSize else {
            throw PluginLoadError(.unsafeFile, "is \(status.st_size) bytes, over the \(maxSize)-byte limit (max_plugin_size)")
        }
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
            // The file may be growing while it is read (a copy in progress): stop at the limit all the same.
            guard bytes.count <= maxSize else {
                throw PluginLoadError(.unsafeFile, "grew over the \(maxSize)-byte limit (max_plugin_size) while read")
            }
        }
        let digest = SHA256.hash(data: bytes).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
        return .changed(PluginFileSnapshot(path: path, fileName: fileName, bytes: bytes, sha256: digest,
                                           fingerprint: fingerprint))
    }
}

/// Identifies one version of a file without reading it, the way `make` and `rsync` do: device, inode, size and
/// modification and change times. Any write or rename gives a new fingerprint (the change time moves on every
/// write, chmod and link, and cannot be set by a program).
public struct PluginFileFingerprint: Sendable, Hashable {
    let device: UInt64
    let inode: UInt64
    let size: Int64
    let modified: Int64
    let changed: Int64

    init(_ status: stat) {
        self.device = UInt64(status.st_dev)
        self.inode = UInt64(status.st_ino)
        self.size = Int64(status.st_size)
        self.modified = Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec)
        self.changed = Int64(status.st_ctim.tv_sec) * 1_000_000_000 + Int64(status.st_ctim.tv_nsec)
    }
}
