import Foundation
import Testing

/// The real AutoGen 0.7.5 event streams and AutoGen Studio captures (copied into Fixtures/autogen from the team's
/// shared fixtures, so a clone of this repository alone runs its tests), and the comparisons the agent tests make
/// against them: the same frame types in the same order, the same fields.
enum AutoGenCaptures {
    static let directory = "\(PluginFixtures.fixtureDirectory)/autogen"

    static func lines(_ file: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)
        return try text.split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["_harness"] == nil }
    }

    /// The frames the protocol sends for a raw `run_stream()` capture: `system`, then every item in order as
    /// Studio frames it (and the items Studio drops), then `result`.
    static func expectedShapes(raw name: String) throws -> [String] {
        ["system"] + (try self.lines("\(name).raw.jsonl")).map { item in
            switch item["type"] as? String ?? "" {
            case "TaskResult": return "result"
            case "ModelClientStreamingChunkEvent": return "message_chunk:ModelClientStreamingChunkEvent"
            case "UserInputRequestedEvent": return "input_request:UserInputRequestedEvent"
            case let type: return "message:\(type)"
            }
        }
    }

    static let envelope: Set<String> = ["v", "run_id", "seq", "ts"]

    /// Checks `frames` (after `system`) against the capture `name`: order and types, every payload's fields equal
    /// to AutoGen's for the same item, every frame's fields a superset of Studio's for its type plus the envelope,
    /// and seq counting 1, 2, 3, ...
    static func expectMatches(_ frames: [AgentFrame], capture name: String, sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        let shapes = ["system"] + frames.map(\.shape)
        #expect(shapes == (try self.expectedShapes(raw: name)), "got \(shapes), ending \(frames.last?.object ?? [:])", sourceLocation: sourceLocation)
        let raw = try self.lines("\(name).raw.jsonl")
        let studio = try self.lines("\(name).studio.jsonl")
        for (index, (frame, item)) in zip(frames, raw).enumerated() {
            #expect(frame.seq == index + 1, "seq of frame \(index)", sourceLocation: sourceLocation)
            #expect(Set(frame.object.keys).isSuperset(of: self.envelope), "\(frame)", sourceLocation: sourceLocation)
            if let studioFrame = studio.first(where: { $0["type"] as? String == frame.type }) {
                let missing = Set(studioFrame.keys).subtracting(frame.object.keys)
                #expect(missing.isEmpty, "\(frame.type) lacks Studio's \(missing)", sourceLocation: sourceLocation)
            }
            if frame.type == "result" {
                let taskResult = frame.data?["task_result"] as? [String: Any] ?? [:]
                #expect(Set(taskResult.keys) == ["messages", "stop_reason"], sourceLocation: sourceLocation)
                let types = (taskResult["messages"] as? [[String: Any]] ?? []).map { $0["type"] as? String ?? "" }
                let expected = (item["messages"] as? [[String: Any]] ?? []).map { $0["type"] as? String ?? "" }
                #expect(types == expected, sourceLocation: sourceLocation)
                #expect((taskResult["stop_reason"] as? String) == (item["stop_reason"] as? String),
                        sourceLocation: sourceLocation)
            } else {
                #expect(Set(frame.data.map { Array($0.keys) } ?? []) == Set(item.keys), "payload of \(frame.shape)",
                        sourceLocation: sourceLocation)
            }
        }
    }
}
