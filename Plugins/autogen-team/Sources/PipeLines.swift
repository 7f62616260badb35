#if canImport(Glibc)
import Glibc
#endif

/// Reads a pipe line by line until EOF, on the calling thread: a dedicated one, as the reads block (they have no
/// place on an event loop or in the cooperative pool).
enum PipeLines {
    /// Calls `body` with each line (without its newline), then, at EOF, with what is left after the last newline.
    /// - Parameters:
    ///   - descriptor: the read end of a pipe; the caller closes it.
    ///   - maxLineBytes: a longer line is handed over in pieces of this many bytes, so a writer that never writes a
    ///     newline cannot grow the buffer without bound (nil: lines of any length, for the worker protocol).
    static func read(_ descriptor: Int32, maxLineBytes: Int? = nil, _ body: (String) -> Void) {
        var pending: [UInt8] = []
        // pending[..<scanned] holds no newline. Without it, a 64 MiB protocol line was scanned again from its
        // start on every 64 KiB read: 1024 reads, ~32 GiB of scanning (quadratic).
        var scanned = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            pending.append(contentsOf: buffer[0..<count])
            var start = 0
            while let newline = pending[scanned...].firstIndex(of: UInt8(ascii: "\n")) {
                body(String(decoding: pending[start..<newline], as: UTF8.self))
                start = newline + 1
                scanned = start
            }
            scanned = pending.count
            if let limit = maxLineBytes {
                while pending.count - start >= limit {
                    body(String(decoding: pending[start..<(start + limit)], as: UTF8.self))
                    start += limit
                }
            }
            pending.removeFirst(start)
            scanned -= start
        }
        if !pending.isEmpty { body(String(decoding: pending, as: UTF8.self)) }
    }
}
