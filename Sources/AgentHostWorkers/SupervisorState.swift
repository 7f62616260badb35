import AgentHostCore
import Foundation
import Glibc

/// The supervisor's worker slots: changed by its event loop, read by the admin socket (`/health`'s table).
actor SupervisorState {
    private var slots: [WorkerSupervisor.Slot]

    init(slots: [WorkerSupervisor.Slot]) {
        self.slots = slots
    }

    func started(_ index: Int, process: WorkerProcess) {
        self.slots[index].process = process
        self.slots[index].ready = false
        self.slots[index].watchdogVerdict = nil
        self.slots[index].reloadPending = false
    }

    /// Whether `pid` is the slot's current process (reports of an older one are stale).
    func markReady(_ index: Int, pid: pid_t) -> Bool {
        guard self.slots[index].process?.pid == pid else { return false }
        self.slots[index].ready = true
        return true
    }

    var allReady: Bool { self.slots.allSatisfy(\.ready) }

    var noneRunning: Bool { self.slots.allSatisfy { $0.process == nil } }

    /// Empties the slot of `pid`; returns the process and the slot as it was.
    func processExited(_ index: Int, pid: pid_t) -> (WorkerProcess, WorkerSupervisor.Slot)? {
        let slot = self.slots[index]
        guard let process = slot.process, process.pid == pid else { return nil }
        self.slots[index].process = nil
        self.slots[index].ready = false
        return (process, slot)
    }

    /// Records a death and returns the delay before the slot's next worker.
    func scheduleRespawn(_ index: Int, uptime: Duration, cause: String) -> Duration {
        self.slots[index].restarts += 1
        self.slots[index].lastExit = cause
        return self.slots[index].backoff.workerDied(after: uptime)
    }

    func setWatchdogVerdict(_ index: Int, callback: BusyCallback, seconds: Double) {
        self.slots[index].watchdogVerdict = (callback, seconds)
    }

    func signalAll(_ signal: Int32) {
        for slot in self.slots { slot.process?.signal(signal) }
    }

    /// SIGHUP to every serving worker. One still starting has no SIGHUP trap yet (it would die of it) and may have
    /// read the config and plugins before the reload: it gets its SIGHUP once it serves (`takePendingReload`).
    func reloadAll() {
        for index in self.slots.indices {
            if self.slots[index].ready {
                self.slots[index].process?.signal(SIGHUP)
            } else if self.slots[index].process != nil {
                self.slots[index].reloadPending = true
            }
        }
    }

    /// The process of a worker that just became ready and missed a reload while it started, if so.
    func takePendingReload(_ index: Int) -> WorkerProcess? {
        guard self.slots[index].reloadPending, self.slots[index].ready else { return nil }
        self.slots[index].reloadPending = false
        return self.slots[index].process
    }

    /// Serving workers with a callback running longer than `limit`, not yet sentenced.
    func stuckCallbacks(limit: Duration) -> [(Int, WorkerProcess, BusyCallback)] {
        let now = CoarseClock.nanoseconds()
        let limitNanoseconds = UInt64(limit.components.seconds) * 1_000_000_000
            + UInt64(limit.components.attoseconds / 1_000_000_000)
        var stuck: [(Int, WorkerProcess, BusyCallback)] = []
        for (index, slot) in self.slots.enumerated() where slot.watchdogVerdict == nil {
            guard let process = slot.process else { continue }
            let busy = process.memory.region.busyCallbacks()
            if let worst = busy.filter({ now &- $0.startedNanoseconds > limitNanoseconds })
                .min(by: { $0.startedNanoseconds < $1.startedNanoseconds })
            {
                stuck.append((index, process, worst))
            }
        }
        return stuck
    }

    /// `[{"worker", "pid", "state", "restarts", "last_exit"}]`, for `/health`.
    func table() -> String {
        let rows: [[String: Any]] = self.slots.enumerated().map { index, slot in
            var row: [String: Any] = ["worker": index, "restarts": slot.restarts]
            if let process = slot.process {
                row["pid"] = Int(process.pid)
                row["state"] = slot.ready ? "serving" : "starting"
            } else {
                row["state"] = "restarting"
            }
            if let lastExit = slot.lastExit { row["last_exit"] = lastExit }
            return row
        }
        let data = (try? JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
