import Glibc

/// Checks that a plugin file may be trusted before anything maps it, like OpenSSH's `safe_path`: a regular file
/// (not a symlink), owned by root or by the user the host runs as, writable by no one else, in a directory that
/// is not group- or world-writable either. A file anyone else could write is code anyone else could run in the host.
enum PluginFileVetting {
    /// Checks the status of an opened plugin file.
    static func vetFile(_ status: stat) throws(PluginLoadError) {
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw PluginLoadError(.unsafeFile, "is not a regular file")
        }
        try self.checkOwnerAndMode(status, what: "file")
    }

    static func vetDirectory(_ directory: String) throws(PluginLoadError) {
        var status = stat()
        guard stat(directory, &status) == 0 else {
            throw PluginLoadError(.unsafeFile, "cannot stat the plugin directory: \(String(cString: strerror(errno)))")
        }
        try self.checkOwnerAndMode(status, what: "plugin directory")
    }

    private static func checkOwnerAndMode(_ info: stat, what: String) throws(PluginLoadError) {
        let uid = geteuid()
        guard info.st_uid == 0 || info.st_uid == uid else {
            throw PluginLoadError(.unsafeFile, "\(what) is owned by uid \(info.st_uid), not root or uid \(uid)")
        }
        if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw PluginLoadError(.unsafeFile, "\(what) is group- or world-writable (mode \(mode)); chmod go-w it")
        }
    }
}
