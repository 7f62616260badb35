import Foundation

struct TimedOut: Error, CustomStringConvertible {
    var description: String { "timed out" }
}

/// Runs `body`, failing with `TimedOut` after `seconds`: a broken server must fail a test, not hang the suite. The
/// default is long for the same reason as `eventually`'s: it only matters when something is broken, and a fresh
/// clone's first run (every suite starting servers, Python workers and compilers on two cores) stalled healthy
/// servers past 10 s.
func withTimeout<T: Sendable>(seconds: Double = 30, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimedOut()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Polls `condition` until it holds or `seconds` pass; returns whether it held. The deadline only matters when the
/// condition never holds, so it is long: in a fresh clone every suite starts at once on two cores, and a 5 s
/// deadline once fired before a loaded server had handled one message.
func eventually(seconds: Double = 20, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// `eventually` for a condition that awaits (a request to the server, say).
func eventuallyAsync(seconds: Double = 20, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}
