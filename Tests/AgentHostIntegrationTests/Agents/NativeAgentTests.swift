import Foundation
import Testing

/// The native Swift agent: every frame type of the protocol, payloads shaped exactly like AutoGen's.
@Suite("native agent", .serialized)
struct NativeAgentTests {
    /// Field sets of every AutoGen event type seen in the captures.
    static func autoGenFields() throws -> [String: Set<String>] {
        var fields: [String: Set<String>] = [:]
        let files = try FileManager.default.contentsOfDirectory(atPath: AutoGenCaptures.directory)
        for file in files where file.hasSuffix(".raw.jsonl") {
            for item in try AutoGenCaptures.lines(file) {
                if let type = item["type"] as? String { fields[type] = Set(item.keys) }
            }
        }
        return fields
    }

    @Test func everyFrameTypeWithAutoGenShapedPayloads() async throws {
        let server = try await AgentServer.start()
        let frames = try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/native")
            try await client.send(["type": "start", "task": "count these four words"])
            defer { Task { await client.close() } }
            return try await client.collect(answer: "yes please")
        }
        let types = Set(frames.map(\.shape))
        for expected in ["message:TextMessage", "message:ThoughtEvent", "message:ToolCallRequestEvent",
                         "message:ToolCallExecutionEvent", "message_chunk:ModelClientStreamingChunkEvent",
                         "input_request:UserInputRequestedEvent", "result"]
        {
            #expect(types.contains(expected), "missing \(expected)")
        }
        let fields = try Self.autoGenFields()
        for frame in frames where frame.type != "result" {
            let type = try #require(frame.data?["type"] as? String)
            #expect(Set(frame.data.map { Array($0.keys) } ?? []) == fields[type], "\(type)")
        }
        #expect(frames.compactMap(\.seq) == Array(1...frames.count))
        // The tool really ran: word_count of the task.
        let execution = frames.first { $0.shape == "message:ToolCallExecutionEvent" }
        let result = (execution?.data?["content"] as? [[String: Any]])?.first?["content"] as? String
        #expect(result == "4")
        // The TaskResult holds every message, as AutoGen's does (chunks excluded).
        let taskResult = frames.last?.data?["task_result"] as? [String: Any]
        let messages = taskResult?["messages"] as? [[String: Any]] ?? []
        #expect(messages.count == frames.filter { $0.type == "message" || $0.type == "input_request" }.count)
    }
}
