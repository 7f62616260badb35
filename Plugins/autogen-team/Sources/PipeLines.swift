#if canImport(Glibc)
import Glibc
#endif

/// Reads a pipe line by line until EOF, on the calling thread: a dedicated one, as the reads block (they have no
/// place on an event loop or in the cooperative pool).
///
/// The work per byte is a `memchr` for the newline and one copy: a worker's event lines are megabytes when a task
/// carries images (AutoGen re-encodes each as PNG), and this reader is the only one of its worker.
enum PipeLines {
    /// Calls `body` with each line's bytes (without its newline; valid only during the call).
    /// - Parameters:
    ///   - descriptor: the read end of a pipe; the caller closes it.
    ///   - maxLineBytes: a longer line is handed over in pieces of this many bytes, so a writer that never writes a
    ///     newline cannot grow the buffer without bound (nil: lines of any length, for the worker protocol).
    ///   - partialLastLine: at EOF, hand over what is left after the last newline. Not for the worker protocol: a
    ///     worker killed mid-line leaves half a JSON value, which must not reach a client as an event.
    ///   - onRead: called with the byte count of every read, before its lines are handed over (a sign of life).
    ///   - onOverlong: if given, a line reaching `maxLineBytes` is not handed over in pieces: this is called and
    ///     reading stops (the worker protocol: such a writer is broken, and its half line means nothing).
    static func read(_ descriptor: Int32, maxLineBytes: Int? = nil, partialLastLine: Bool = true,
                     onRead: (Int) -> Void = { _ in }, onOverlong: (() -> Void)? = nil,
                     _ body: (UnsafeBufferPointer<UInt8>) -> Void)
    {
        var overlong = false
        var pending: [UInt8] = []
        // pending[..<scanned] holds no newline. Without it, a 64 MiB protocol line was scanned again from its
        // start on every 64 KiB read: 1024 reads, ~32 GiB of scanning (quadratic).
        var scanned = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            onRead(count)
            pending.append(contentsOf: buffer[0..<count])
            let start = pending.withUnsafeBufferPointer { bytes -> Int in
                var start = 0
                while let newline = Self.newline(in: bytes, from: scanned) {
                    body(UnsafeBufferPointer(rebasing: bytes[start..<newline]))
                    start = newline + 1
                    scanned = start
                }
                if let limit = maxLineBytes {
                    if onOverlong != nil, bytes.count - start >= limit {
                        overlong = true
                        return start
                    }
                    while bytes.count - start >= limit {
                        body(UnsafeBufferPointer(rebasing: bytes[start..<(start + limit)]))
                        start += limit
                    }
                }
                return start
            }
            if overlong, let onOverlong {
                onOverlong()
                return
            }
            // Only what follows the last line moves (less than one read, unless a line is still incomplete).
            pending.removeFirst(start)
            scanned = pending.count
        }
        if partialLastLine, !pending.isEmpty { pending.withUnsafeBufferPointer { body($0) } }
    }

    /// Lines as text (invalid UTF-8 repaired), for the worker's stderr.
    static func readText(_ descriptor: Int32, maxLineBytes: Int? = nil, _ body: (String) -> Void) {
        self.read(descriptor, maxLineBytes: maxLineBytes) { body(String(decoding: $0, as: UTF8.self)) }
    }

    /// The index of the first newline at or after `start`.
    private static func newline(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress,
              let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start)
        else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(base)
    }
}
