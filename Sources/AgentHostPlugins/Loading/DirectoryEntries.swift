import Glibc

/// The names in a directory, read with `readdir`.
///
/// Why not `entry.pointee.d_name`: that copies the whole 256-byte `d_name` field, but the kernel packs records at
/// their real length (`d_reclen`), so for a short name at the end of `readdir`'s buffer the copy reads past it, into
/// an unmapped page once in a while (seen: a crash scanning a /tmp with thousands of entries). The name is read
/// from its address, up to its NUL, and no further.
enum DirectoryEntries {
    /// The entry names of `path` except "." and "..", or nil when it cannot be opened (errno tells why).
    static func names(in path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = String(cString: (UnsafeRawPointer(entry) + Self.nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static let nameOffset: Int = {
        guard let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name) else {
            preconditionFailure("dirent.d_name is a stored field")
        }
        return offset
    }()
}
