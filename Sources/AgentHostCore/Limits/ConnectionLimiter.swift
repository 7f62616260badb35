import Synchronization

/// Counts open TCP connections, in total and per client IP, so the host can refuse what would exhaust it
/// (503 when full, 429 for one address holding too many) before any upgrade or plugin is involved.
final class ConnectionLimiter: Sendable {
    enum Decision: Equatable {
        case admitted
        case tooManyTotal
        case tooManyFromAddress
    }

    private struct State {
        var total = 0
        var perAddress: [String: Int] = [:]
        var maxTotal: Int
        var maxPerAddress: Int
    }

    private let state: Mutex<State>

    init(maxTotal: Int, maxPerAddress: Int) {
        self.state = Mutex(State(maxTotal: maxTotal, maxPerAddress: maxPerAddress))
    }

    /// New limits (a configuration reload): they apply to the next connection; open ones are never cut off.
    func update(maxTotal: Int, maxPerAddress: Int) {
        self.state.withLock { state in
            state.maxTotal = maxTotal
            state.maxPerAddress = maxPerAddress
        }
    }

    /// Admits a connection from `address` or says why not. An admitted connection must be `release`d once.
    func admit(_ address: String) -> Decision {
        self.state.withLock { state in
            if state.maxTotal > 0 && state.total >= state.maxTotal { return .tooManyTotal }
            let current = state.perAddress[address, default: 0]
            if state.maxPerAddress > 0 && current >= state.maxPerAddress { return .tooManyFromAddress }
            state.total += 1
            state.perAddress[address] = current + 1
            return .admitted
        }
    }

    func release(_ address: String) {
        self.state.withLock { state in
            state.total -= 1
            let remaining = state.perAddress[address, default: 1] - 1
            state.perAddress[address] = remaining > 0 ? remaining : nil
        }
    }

    var open: Int { self.state.withLock { $0.total } }
}
