import Foundation

/// One server frame of the agent protocol, parsed.
struct AgentFrame: @unchecked Sendable, CustomStringConvertible {
    // @unchecked: a parsed JSON object, never mutated.
    let object: [String: Any]
    let text: String

    var type: String { self.object["type"] as? String ?? "?" }
    var data: [String: Any]? { self.object["data"] as? [String: Any] }
    var seq: Int? { self.object["seq"] as? Int }
    var runID: String? { self.object["run_id"] as? String }
    var status: String? { self.object["status"] as? String }
    var isTerminal: Bool { self.type == "result" || self.type == "completion" }
    /// "message:TextMessage", "message_chunk:ModelClientStreamingChunkEvent", "result", ...: what a capture is
    /// compared on.
    var shape: String {
        guard ["message", "message_chunk", "input_request"].contains(self.type), let inner = self.data?["type"] as? String
        else { return self.type }
        return "\(self.type):\(inner)"
    }
    var description: String { self.text }
}

/// A protocol-level client over the raw test client: sends JSON frames, reads parsed ones.
final class AgentClient: @unchecked Sendable {
    // @unchecked: used by one test task at a time.
    let raw: RawWebSocketClient

    struct Closed: Error, CustomStringConvertible {
        let code: UInt16?
        var description: String { "the server closed the socket (code \(self.code.map(String.init) ?? "none"))" }
    }

    struct Refused: Error, CustomStringConvertible {
        let frame: AgentFrame
        var description: String { "the server refused: \(self.frame.text)" }
    }

    init(raw: RawWebSocketClient) { self.raw = raw }

    /// Connects and reads the `system` frame.
    static func connect(port: Int, path: String, headers: [String] = []) async throws -> AgentClient {
        let client = AgentClient(raw: try await RawWebSocketClient.connect(port: port, path: path, extraHeaders: headers))
        let hello = try await client.next()
        guard hello.type == "system" else { throw Closed(code: nil) }
        return client
    }

    /// How the server turned a connection away.
    enum Refusal: Equatable {
        /// The upgrade was answered with this HTTP status (no plugin at that path: 404).
        case http(Int)
        /// The upgrade succeeded but the route closed the socket (with this code) instead of saying hello.
        case close(UInt16?)
        /// It was not refused.
        case none
    }

    static func refusal(port: Int, path: String) async throws -> Refusal {
        do {
            let client = try await AgentClient.connect(port: port, path: path)
            await client.close()
            return .none
        } catch RawWebSocketClient.ClientError.handshakeFailed(let response) {
            return .http(Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0)
        } catch let closed as Closed {
            return .close(closed.code)
        }
    }

    func send(_ object: [String: Any]) async throws {
        let data = try JSONSerialization.data(withJSONObject: object)
        try await self.raw.sendText(String(decoding: data, as: UTF8.self))
    }

    func next() async throws -> AgentFrame {
        let frame = try await self.raw.readMessageOrClose()
        guard frame.opcode == 0x1 else { throw Closed(code: frame.closeCode) }
        let object = try JSONSerialization.jsonObject(with: Data(frame.payload)) as? [String: Any] ?? [:]
        return AgentFrame(object: object, text: frame.text)
    }

    /// Reads one run's frames up to and including its terminal frame, answering input requests with `answer` and
    /// sending `stop` after `stopAfterChunks` chunks.
    func collect(runID: String? = nil, answer: String? = nil, stopAfterChunks: Int? = nil) async throws -> [AgentFrame] {
        var frames: [AgentFrame] = []
        var chunks = 0
        while true {
            let frame = try await self.next()
            if let runID, frame.runID != runID { continue }
            // A refusal ends the collection: waiting on would only time out.
            if frame.type == "error" { throw Refused(frame: frame) }
            frames.append(frame)
            if frame.type == "input_request", let answer {
                try await self.send(["type": "input_response", "response": answer,
                                     "request_id": frame.object["request_id"] ?? "", "run_id": frame.runID ?? ""])
            }
            if frame.type == "message_chunk" {
                chunks += 1
                if chunks == stopAfterChunks { try await self.send(["type": "stop", "run_id": frame.runID ?? ""]) }
            }
            if frame.isTerminal { return frames }
        }
    }

    func close() async { await self.raw.close() }
}
