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
    }

    private let maxTotal: Int
    private let maxPerAddress: Int
    private let state = Mutex(State())

    init(maxTotal: Int, maxPerAddress: Int) {
        self.maxTotal = maxTotal
        self.maxPerAddress = maxPerAddress
    }

    /// Admits a connection from `address` or says why not. An admitted connection must be `release`d once.
    func admit(_ address: String) -> Decision {
        self.state.withLock { state in
            if self.maxTotal > 0 && state.total >= self.maxTotal { return .tooManyTotal }
            let current = state.perAddress[address, default: 0]
            if self.maxPerAddress > 0 && current >= self.maxPerAddress { return .tooManyFromAddress }
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
