/// Whether a socket is blocked (the host said BACKPRESSURE and has not called `didBecomeWritable` since), without
/// losing a wakeup. A run sends under its own lock and learns of BACKPRESSURE when `send` returns; the host's
/// writable callback runs on the event loop and may come in between (the socket drained while `send` was
/// returning). Marking the socket blocked after that would leave it blocked for good: no further writable
/// callback comes, and the run's frames stop while `ping` still gets `pong`. So a sender takes a ticket before it
/// sends, and its BACKPRESSURE only blocks the socket if no writable callback came since the ticket.
struct WritableGate {
    private(set) var isBlocked = false
    /// How many writable callbacks have come.
    private var writableCount: UInt64 = 0

    struct Ticket: Equatable {
        fileprivate let writableCount: UInt64
    }

    /// Take before calling `send`.
    func ticket() -> Ticket { Ticket(writableCount: self.writableCount) }

    /// `send` (begun with `ticket`) returned BACKPRESSURE.
    mutating func backpressure(since ticket: Ticket) {
        if ticket.writableCount == self.writableCount { self.isBlocked = true }
    }

    /// The host called `didBecomeWritable`.
    mutating func becameWritable() {
        self.writableCount &+= 1
        self.isBlocked = false
    }
}
