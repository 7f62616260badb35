import AgentHostPluginSDK
import CAgentHostPlugin

/// wordstream: a small agent-like route written in Swift against the plugin SDK. For each text message it
/// streams a reply word by word, one frame every `delay_ms` (from the plugin's config, default 20), shaped like the
/// AutoGen frames agent routes use, then a completion frame:
///
///     -> hello there
///     <- {"type":"message_chunk","data":{"content":"You ","source":"wordstream"}}
///     <- {"type":"message_chunk","data":{"content":"said: ","source":"wordstream"}}
///     ...
///     <- {"type":"completion","status":"complete","data":{"words":4}}
///
/// Prompts that arrive while a reply is streaming queue up behind it. Binary messages are refused with 1003.
public final class WordStream: AgentHostPlugin {
    public static let name = "wordstream"
    public static let version = "1.0.0"
    public static let routes = ["/wordstream"]

    let host: PluginHost
    let delayMilliseconds: UInt64

    public init(host: PluginHost, config: [UInt8]) throws {
        self.host = host
        self.delayMilliseconds = try Self.delay(fromConfig: config)
    }

    public func open(_ connection: Connection, info: OpenInfo) throws -> Streamer {
        Streamer(connection: connection, delayMilliseconds: self.delayMilliseconds)
    }

    /// Reads `delay_ms` from a JSON object like {"delay_ms": 20}; a small scan, as the SDK carries no JSON parser.
    static func delay(fromConfig config: [UInt8]) throws -> UInt64 {
        let key = Array("\"delay_ms\"".utf8)
        guard let start = (0...max(0, config.count - key.count)).first(where: { config[$0...].starts(with: key) })
        else { return 20 }
        let rest = config[(start + key.count)...].drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: ":") }
        let digits = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard let value = UInt64(String(decoding: digits, as: UTF8.self)), value <= 60_000 else {
            throw ConfigError(message: "delay_ms must be a whole number of milliseconds from 0 to 60000")
        }
        return value
    }
}

struct ConfigError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}

public final class Streamer: ConnectionHandler {
    private let connection: Connection
    private let delayMilliseconds: UInt64
    private var pendingWords: [[Substring]] = []
    private var current: (words: [Substring], next: Int)?
    private var timer: UInt64?

    init(connection: Connection, delayMilliseconds: UInt64) {
        self.connection = connection
        self.delayMilliseconds = delayMilliseconds
    }

    public func didReceive(_ message: Message) {
        guard case .text(let prompt) = message else {
            self.connection.close(code: 1003, reason: "wordstream takes text messages")
            return
        }
        let reply = "You said: \(prompt)"
        self.pendingWords.append(reply.split(separator: " ", omittingEmptySubsequences: true))
        if self.current == nil { self.startNext() }
    }

    private func startNext() {
        guard !self.pendingWords.isEmpty else { return }
        self.current = (self.pendingWords.removeFirst(), 0)
        self.scheduleTick()
    }

    private func scheduleTick() {
        self.timer = self.connection.schedule(afterMilliseconds: self.delayMilliseconds) { [weak self] in
            self?.tick()
        }
    }

    private func tick() {
        guard let (words, next) = self.current else { return }
        if next < words.count {
            let separator = next + 1 < words.count ? " " : ""
            let chunk = JSONText.quoted(String(words[next]) + separator)
            self.connection.send(text: #"{"type":"message_chunk","data":{"content":"# + chunk
                                 + #","source":"wordstream"}}"#)
            self.current = (words, next + 1)
            self.scheduleTick()
        } else {
            self.connection.send(text: #"{"type":"completion","status":"complete","data":{"words":\#(words.count)}}"#)
            self.current = nil
            self.startNext()
        }
    }

    public func didClose(code: UInt16, reason: String) {
        self.pendingWords.removeAll()
        self.current = nil
    }
}

@c public func agenthost_plugin_entry_v1(_ hostABIMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
    PluginExport.descriptor(for: WordStream.self)
}
