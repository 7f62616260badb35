import AgentHostCore
import Foundation
import NIOCore

/// `GET /plugins`, `/metrics` and `/health` of a worker answer for the whole server: the worker that gets the
/// request asks every sibling over its private socket (`PeerAdminServer`) and itself directly, the supervisor for
/// its table of workers, and merges the answers (`ClusterAdminMerge`). A sibling that does not answer in time
/// (restarting, or stuck in a callback the watchdog is about to end) is listed with the reason, not waited for.
public struct ClusterAdmin: Sendable {
    private let context: WorkerContext
    /// This worker's own answers, by question: "plugins", "metrics", "health".
    private let local: [String: any AdminRoute]
    private let group: any EventLoopGroup

    public init(context: WorkerContext, local: [String: any AdminRoute], group: any EventLoopGroup) {
        self.context = context
        self.local = local
        self.group = group
    }

    /// Answers a sibling's question from this worker's own routes.
    public func answerSibling(_ question: String) async -> String {
        await self.local[question]?.respond() ?? ""
    }

    /// The admin routes to serve: the merged ones, for the questions this worker can answer itself.
    public func routes() -> [String: any AdminRoute] {
        var routes: [String: any AdminRoute] = [:]
        if self.local["plugins"] != nil {
            routes["/plugins"] = Merged(contentType: "application/json") { ClusterAdminMerge.plugins(await self.gather("plugins")) }
        }
        if self.local["metrics"] != nil {
            routes["/metrics"] = Merged(contentType: "text/plain; version=0.0.4") {
                ClusterAdminMerge.metrics(await self.gather("metrics"))
            }
        }
        if self.local["health"] != nil {
            routes["/health"] = Merged(contentType: "application/json") {
                async let table = try? PeerAdminClient.ask("workers", at: self.context.supervisorSocketPath, group: self.group)
                let answers = await self.gather("health")
                return ClusterAdminMerge.health(answers, supervisorTable: await table)
            }
        }
        return routes
    }

    /// Every worker's answer (or why there is none), in worker order.
    func gather(_ question: String) async -> [ClusterAdminMerge.Answer] {
        await withTaskGroup(of: ClusterAdminMerge.Answer.self) { group in
            for worker in 0..<self.context.count {
                group.addTask {
                    if worker == self.context.index {
                        return .init(worker: worker, body: await self.answerSibling(question), error: nil)
                    }
                    do {
                        let body = try await PeerAdminClient.ask(question, at: self.context.socketPath(ofWorker: worker),
                                                                 group: self.group)
                        return .init(worker: worker, body: body, error: nil)
                    } catch {
                        return .init(worker: worker, body: nil, error: "\(error)")
                    }
                }
            }
            var answers: [ClusterAdminMerge.Answer] = []
            for await answer in group { answers.append(answer) }
            return answers.sorted { $0.worker < $1.worker }
        }
    }

    private struct Merged: AdminRoute {
        let contentType: String
        let body: @Sendable () async -> String

        func respond() async -> String { await self.body() }
    }
}
