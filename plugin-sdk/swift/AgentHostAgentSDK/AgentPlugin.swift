import AgentHostPluginSDK
import CAgentHostPlugin

/// Serves an `AgentRoute` as a plugin: the bridge from the callback SDK (one handler per socket) to runs.
public final class AgentPlugin<Route: AgentRoute>: AgentHostPlugin {
    public static var name: String { Route.name }
    public static var version: String { Route.version }
    public static var routes: [String] { Route.routes }

    let core: AgentCore

    public init(host: PluginHost, config: [UInt8]) throws {
        // Runs keep their frames in the host's run log: without it there is no stream, no resume, nothing.
        guard host.hasRunLog else {
            throw AgentRunError("agent route \(Route.name) needs the host's run log (plugin ABI 1.1); this host offers "
                + "ABI 1.\(host.abiMinor): run it with an agenthost that has the run log")
        }
        let config = try AgentRouteConfig(json: config)
        if let keys = Route.configKeys { try config.rejectUnknownKeys(keys.union(AgentRouteOptions.keys)) }
        let options = try AgentRouteOptions(config: config)
        for key in AgentRouteOptions.movedKeys.sorted() where config.object[key] != nil {
            host.log(.warning, "config key \(key) no longer applies: runs keep their frames in the host's run log, "
                + "whose retention the operator sets on the host (see plugin-sdk/README.md)")
        }
        self.core = AgentCore(route: try Route(host: host, config: config), options: options, host: host,
                              runIDRoutes: Route.runIDRoutes)
    }

    deinit {
        // instance_drop: the host has closed every socket of this instance. End what still runs, then let the
        // route release its resources (worker processes, threads).
        self.core.registry.cancelAll(reason: "the agent route was replaced or removed")
        self.core.route.shutdown()
    }

    public func open(_ connection: Connection, info: OpenInfo) throws -> AgentSession {
        try self.core.route.admit(info)
        connection.send(text: ServerFrame.system(status: "connected", route: info.route))
        return AgentSession(connection: connection, info: info, core: self.core)
    }

    /// The descriptor to return from `agenthost_plugin_entry_v1`.
    public static func descriptor() -> UnsafePointer<agenthost_plugin_v1> {
        PluginExport.descriptor(for: AgentPlugin<Route>.self)
    }
}

/// What every socket and run of one plugin instance share.
final class AgentCore: Sendable {
    let route: any AgentRoute
    let options: AgentRouteOptions
    let registry: RunRegistry
    let host: PluginHost
    /// Pattern routes whose last path segment is a default run id.
    private let runIDRoutes: [String]

    init(route: any AgentRoute, options: AgentRouteOptions, host: PluginHost, runIDRoutes: [String],
         registry: RunRegistry? = nil)
    {
        self.route = route
        self.options = options
        self.registry = registry ?? RunRegistry(options: options)
        self.host = host
        self.runIDRoutes = runIDRoutes
    }

    /// Studio clients put the run id in the path (`/api/ws/runs/{run_id}`) and none in `start`.
    func defaultRunID(forPath path: String) -> String {
        if AgentRoutePattern.bestMatch(for: path, in: self.runIDRoutes) != nil,
            let segment = path.split(separator: "/").last, ClientFrame.isValidRunID(segment)
        {
            return String(segment)
        }
        return AutoGenEvent.newID()
    }

    /// Runs the route's producer for one run and turns how it ended into the run's terminal frame.
    func execute(_ run: AgentRun) async {
        let record = run.record
        do {
            let result = try await self.route.run(run)
            record.complete(result)
        } catch is CancellationError {
            record.finish(.cancelled, reason: "Cancelled")
        } catch {
            self.host.log(.warning, "run \(run.id) failed: \(error)")
            record.finish(.error, reason: String(describing: error))
        }
    }
}
