import CFileStatus
import Glibc

/// An exclusive flock on `<state dir>/lock`, held for the life of the process: two independent servers never share
/// one state dir. A supervisor holds it for its worker processes (workers start with `lockHeldByParent`).
public final class StateDirectoryLock: Sendable {
    private let descriptor: Int32

    public enum Failure: Error, CustomStringConvertible {
        /// Another process holds the lock.
        case held(String)
        /// The lock file cannot be created (the directory is not writable).
        case cannotOpen(String, errno: Int32)
        /// The directory belongs to another user, or others may write to it: whoever can write there can read
        /// every run (replace the store, plant links), so it is refused like a plugin directory others can write.
        case insecure(String, reason: String)

        /// A refusal that must stop the start: starting anyway would share the state dir, or trust another user's.
        public var refusesStart: Bool {
            switch self {
            case .held, .insecure: return true
            case .cannotOpen: return false
            }
        }

        public var description: String {
            switch self {
            case .held(let path):
                return "another AgentHost server is using the state dir (\(path) is locked); give each server its own state_dir"
            case .cannotOpen(let path, let code):
                return "cannot create the state dir lock \(path): \(String(cString: strerror(code)))"
            case .insecure(let path, let reason):
                return "the state dir \(path) \(reason); it must belong to the server's user (or root) and be "
                    + "writable by its owner alone (chmod 700)"
            }
        }
    }

    /// Creates the directory if needed (0700), checks who owns it and takes the lock without waiting.
    public init(directory: String) throws(Failure) {
        mkdir(directory, 0o700)
        var status = agenthost_file_status()
        if agenthost_status(directory, &status) == 0 {
            // Root's or the server's own, as for the plugin directory (`PluginFileVetting`): a root-owned dir the
            // server cannot write is the unwritable case (runs in memory), not a foreign one.
            if status.uid != 0 && status.uid != geteuid() {
                throw .insecure(directory, reason: "belongs to uid \(status.uid), not to root or the server's uid \(geteuid())")
            }
            if status.mode & 0o022 != 0 {
                throw .insecure(directory, reason: "can be written by others (mode \(String(status.mode & 0o777, radix: 8)))")
            }
        }
        let path = directory + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .cannotOpen(path, errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { throw .held(path) }
            throw .cannotOpen(path, errno: code)
        }
        self.descriptor = fd
    }

    deinit {
        close(self.descriptor)
    }
}
