import ArgumentParser

@main
struct AgentHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agenthost",
        abstract: "A WebSocket application server whose routes are plugins loaded from a directory.",
        subcommands: [ServeCommand.self, TokenCommand.self, VersionCommand.self, NewPluginCommand.self],
        defaultSubcommand: ServeCommand.self)
}
