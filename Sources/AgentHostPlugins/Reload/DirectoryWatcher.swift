import Foundation
import Glibc
import Synchronization

/// Reports changes to the plugin directory (for `agenthost serve --watch`), debounced: a burst of events, such as
/// a `cp` writing a large file, becomes one change once the directory has been quiet for `quietPeriod`.
///
/// inotify by hand: neither NIO nor Foundation on Linux offers a directory watcher. A dedicated thread waits on the
/// inotify descriptor with poll(2) and a short timeout, so `stop()` needs no signal to end it.
public final class DirectoryWatcher: Sendable {
    public let changes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let descriptor: Int32
    private let stopped = Atomic<Bool>(false)

    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    public init(directory: String, quietPeriod: Duration = .milliseconds(250)) throws {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw Error(description: "inotify_init1 failed: \(String(cString: strerror(errno)))") }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            close(fd)
            throw Error(description: "cannot watch \(directory): \(String(cString: strerror(errno)))")
        }
        self.descriptor = fd
        (self.changes, self.continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let quietMilliseconds = Int32(quietPeriod.components.seconds * 1000 + quietPeriod.components.attoseconds / 1_000_000_000_000_000)
        let thread = Thread { [self] in self.watch(quietMilliseconds: quietMilliseconds) }
        thread.name = "agenthost-plugin-watch"
        thread.start()
    }

    public func stop() {
        self.stopped.store(true, ordering: .relaxed)
    }

    private func watch(quietMilliseconds: Int32) {
        var pending = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !self.stopped.load(ordering: .relaxed) {
            var pollDescriptor = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pollDescriptor, 1, pending ? quietMilliseconds : 200)
            if ready > 0 {
                // Drain the events; their details do not matter: a reload looks at the whole directory.
                while buffer.withUnsafeMutableBytes({ read(self.descriptor, $0.baseAddress, $0.count) }) > 0 {}
                pending = true
            } else if ready == 0 && pending {
                pending = false
                self.continuation.yield()
            }
        }
        self.continuation.finish()
        close(self.descriptor)
    }
}
