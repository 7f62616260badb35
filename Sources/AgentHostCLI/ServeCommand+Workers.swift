import AgentHostCore
import AgentHostWorkers
import ArgumentParser
import Foundation
import Logging
import NIOCore
import UnixSignals

extension ServeCommand {
    /// `--workers N` with N > 1: this process becomes the supervisor. It has already checked the configuration
    /// (a worker would refuse the same file), binds the listening socket once, starts the workers with this same
    /// command line, prints the listening line when all of them serve, and returns when they were drained.
    func supervise(workers: Int, server: ServerConfiguration, file: ConfigFile, logger: Logger) async throws {
        // Trapped before the first worker starts: from then on these signals mean "reload" and "drain".
        let signals = await UnixSignalsSequence(trapping: .sighup, .sigterm, .sigint)
        let port = try ReservedPort.bind(host: server.host, port: server.port)
        var configuration = WorkerSupervisor.Configuration(workers: workers, arguments: CommandLine.arguments)
        configuration.watchdogLimit = file.watchdog
        configuration.drainDeadline = .nanoseconds(server.shutdownTimeout.nanoseconds) + .seconds(5)
        let supervisor = WorkerSupervisor(configuration: configuration, port: port, logger: logger) { death in
            // Hook for the host-owned run log (issue 10, branch runlog-host): the dead worker's live runs get
            // their terminal entry here once the backend offers a call to end a dead writer's live logs.
            logger.debug("worker death hook", metadata: ["worker": "\(death.worker)", "pid": "\(death.pid)"])
        }
        let scheme = server.tls == nil ? "ws" : "wss"
        let address = port.address
        let shownHost = address.protocol == .inet6 ? "[\(address.ipAddress ?? server.host)]" : (address.ipAddress ?? server.host)
        logger.info("supervising workers", metadata: ["workers": "\(workers)", "address": "\(address)"])
        let status = try await supervisor.run(signals: signals) {
            print("agenthost listening on \(scheme)://\(shownHost):\(address.port ?? server.port)")
            fflush(nil)
        }
        if status != 0 { throw ExitCode(status) }
    }
}
