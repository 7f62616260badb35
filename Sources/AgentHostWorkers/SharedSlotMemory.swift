import AgentHostCore
import Glibc

/// A `CallbackSlotRegion` in a shared file mapping: the supervisor creates it for each worker it starts and keeps its mapping
/// after the worker died (to read what the worker was running); the worker maps the same file (`map(fd:)`).
public struct SharedSlotMemory: @unchecked Sendable {
    // @unchecked: the mapping is only read through CallbackSlotRegion's atomics, and unmapped once, by its owner.
    public let fd: CInt
    public let region: CallbackSlotRegion

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A new zeroed, formatted region in a file of `directory` that is unlinked at once (an anonymous file, as
    /// a memfd would be; Swift's Glibc module does not offer memfd_create). Close-on-exec: handed to a worker with
    /// an explicit dup.
    public static func create(in directory: String) throws -> SharedSlotMemory {
        var template = Array("\(directory)/slots-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw Failure(description: "cannot create the callback slots: errno \(errno)") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        guard ftruncate(fd, off_t(CallbackSlotRegion.byteCount)) == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "ftruncate of the callback slots failed: errno \(code)")
        }
        let memory = try Self.map(fd: fd)
        memory.format()
        return SharedSlotMemory(fd: fd, region: memory)
    }

    /// Maps a region created by `create()` (a worker maps the descriptor it inherited).
    public static func map(fd: CInt) throws -> CallbackSlotRegion {
        let address = mmap(nil, CallbackSlotRegion.byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw Failure(description: "mmap of the callback slots failed: errno \(errno)")
        }
        return CallbackSlotRegion(base: address)
    }

    /// Unmaps and closes (once the worker is gone and its cause was read).
    public func release() {
        munmap(self.region.base, CallbackSlotRegion.byteCount)
        close(self.fd)
    }
}
