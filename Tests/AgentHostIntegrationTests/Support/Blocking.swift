import Foundation

/// Runs blocking work (waiting for a child process, reading a pipe) on a thread of its own and awaits it.
///
/// Swift concurrency's cooperative pool has one thread per core: two here. Tests that started servers or compilers
/// synchronously held both threads for seconds (an AutoGen server waits for its Python workers), so every other
/// test stood still meanwhile, and the servers they talked to cut off their half-finished handshakes.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}
