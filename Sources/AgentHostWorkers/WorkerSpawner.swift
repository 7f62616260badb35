import Glibc

/// Starts a worker: this very binary (`/proc/self/exe`, so a binary replaced on disk since does not matter) with
/// the supervisor's own arguments, a few environment variables, and the descriptors it inherits at fixed numbers
/// (`WorkerEnvironment`).
enum WorkerSpawner {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// - Parameters:
    ///   - inherited: descriptors to hand over, in order: the first becomes fd 3 in the worker, the next 4, and so
    ///     on. Every other descriptor of the supervisor is close-on-exec and stays behind.
    static func spawn(arguments: [String], environment: [String: String], inherited: [CInt]) throws -> pid_t {
        // Copies above every target number first: dup2(3 -> 3) would keep close-on-exec set, and a source that is
        // also a later target would be overwritten before it was copied.
        let high = inherited.map { fcntl($0, F_DUPFD_CLOEXEC, CInt(64)) }
        defer { for fd in high where fd >= 0 { close(fd) } }
        guard !high.contains(where: { $0 < 0 }) else { throw Failure(description: "dup failed: errno \(errno)") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (offset, fd) in high.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, fd, CInt(3 + offset))
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Signals the supervisor traps (ignored under the hood) start at their defaults in the worker, unblocked,
        // and the worker gets a process group of its own: a terminal's Ctrl-C reaches the supervisor alone, which
        // then drains every worker once.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw Failure(description: "cannot start a worker: \(String(cString: strerror(status)))")
        }
        return pid
    }
}
