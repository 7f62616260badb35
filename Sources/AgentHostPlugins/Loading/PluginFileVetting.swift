import Glibc

/// Checks that a plugin file may be trusted before anything maps it, like OpenSSH's `safe_path`: a regular file
/// (not a symlink), owned by root or by the user the host runs as, writable by no one else, in a directory that
/// is not group- or world-writable either, below directories that no one else can rename or replace. A file anyone
/// else could write, or put in its place, is code anyone else could run in the host.
enum PluginFileVetting {
    /// Checks the status of an opened plugin file.
    static func vetFile(_ status: stat) throws(PluginLoadError) {
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw PluginLoadError(.unsafeFile, "is not a regular file")
        }
        try self.checkOwnerAndMode(status, what: "file", stickyAllowed: false)
    }

    /// Checks the plugin directory and every directory the path to it passes through, as written and as resolved.
    /// An ancestor may be world-writable if it has the sticky bit (like /tmp): others can then neither rename nor
    /// remove what they do not own in it. A symbolic link on the way is only as safe as the directory holding it
    /// (whoever can write there can point it elsewhere), which is why the path as written is walked too, not only
    /// the directory it resolves to today.
    static func vetDirectory(_ directory: String) throws(PluginLoadError) {
        guard let resolved = realpath(directory, nil) else {
            throw PluginLoadError(.unsafeFile, "cannot resolve the plugin directory: \(String(cString: strerror(errno)))")
        }
        let path = String(cString: resolved)
        free(resolved)
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw PluginLoadError(.unsafeFile, "cannot stat the plugin directory: \(String(cString: strerror(errno)))")
        }
        try self.checkOwnerAndMode(status, what: "plugin directory", stickyAllowed: false)
        let written = directory.hasPrefix("/") ? directory : Self.currentDirectory() + "/" + directory
        for ancestor in Self.ancestors(of: path) + Self.ancestors(of: written) {
            guard stat(ancestor, &status) == 0 else {
                throw PluginLoadError(.unsafeFile, "cannot stat \(ancestor): \(String(cString: strerror(errno)))")
            }
            try self.checkOwnerAndMode(status, what: "plugin directory's parent \(ancestor)", stickyAllowed: true)
        }
    }

    /// The directories holding each component of `path`, from "/" down: for "/a/b/c", "/", "/a" and "/a/b".
    static func ancestors(of path: String) -> [String] {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        var result = ["/"]
        var prefix = ""
        for component in components.dropLast() {
            prefix += "/" + component
            result.append(prefix)
        }
        return result
    }

    private static func currentDirectory() -> String {
        guard let cwd = getcwd(nil, 0) else { return "/" }
        defer { free(cwd) }
        return String(cString: cwd)
    }

    private static func checkOwnerAndMode(_ info: stat, what: String, stickyAllowed: Bool) throws(PluginLoadError) {
        let uid = geteuid()
        guard info.st_uid == 0 || info.st_uid == uid else {
            throw PluginLoadError(.unsafeFile, "\(what) is owned by uid \(info.st_uid), not root or uid \(uid)")
        }
        let sticky = info.st_mode & S_ISVTX != 0
        if info.st_mode & (S_IWGRP | S_IWOTH) != 0 && !(stickyAllowed && sticky) {
            let mode = String(info.st_mode & 0o7777, radix: 8)
            throw PluginLoadError(.unsafeFile, "\(what) is group- or world-writable (mode \(mode)); chmod go-w it")
        }
    }
}
