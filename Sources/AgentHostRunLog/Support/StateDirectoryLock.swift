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

        /// Another server holds it: starting anyway would share the state dir.
        public var isHeld: Bool {
            if case .held = self { return true }
            return false
        }

        public var description: String {
            switch self {
            case .held(let path):
                return "another AgentHost server is using the state dir (\(path) is locked); give each server its own state_dir"
            case .cannotOpen(let path, let code):
                return "cannot create the state dir lock \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    /// Creates the directory if needed and takes the lock without waiting.
    public init(directory: String) throws(Failure) {
        mkdir(directory, 0o700)
        let path = directory + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
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
