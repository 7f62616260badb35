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
/// Prompts that arrive while a reply is streaming queue up behind it, within a bound: a client may have at most
/// `Streamer.maxQueuedPrompts` prompts waiting and `Streamer.maxQueuedBytes` of prompt text waiting or streaming;
/// one more and the connection is closed with 1008. Replies pause while the host reports backpressure (`send`
/// returned `.backpressure`) and resume on `didBecomeWritable`. Binary messages are refused with 1003.
///
/// Copy the bound along with the rest: a route that queues whatever a client sends, for as long as the client does
/// not read, lets one socket take as much memory as it likes (+30-75 MB per connection here before the bound).
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
    /// Prompts that may wait behind the reply being streamed. A client that reads its replies never gets near it.
    static let maxQueuedPrompts = 16
    /// Bytes of prompt text waiting or streaming (a word costs a few bytes more while it streams).
    static let maxQueuedBytes = 64 << 10

    private let connection: Connection
    private let delayMilliseconds: UInt64
    private var pendingReplies: [String] = []
    private var current: (words: [Substring], next: Int)?
    private var queuedBytes = 0
    private var currentBytes = 0
    private var timer: UInt64?
    /// The host's outbound queue is above its high-water mark: no word is sent until `didBecomeWritable`.
    private var paused = false

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
        guard self.pendingReplies.count < Self.maxQueuedPrompts,
            self.queuedBytes + self.currentBytes + reply.utf8.count <= Self.maxQueuedBytes
        else {
            self.pendingReplies.removeAll()
            self.queuedBytes = 0
            self.connection.close(code: 1008, reason: "wordstream: too many prompts queued; read the replies first")
            return
        }
        self.pendingReplies.append(reply)
        self.queuedBytes += reply.utf8.count
        if self.current == nil { self.startNext() }
    }

    private func startNext() {
        guard !self.pendingReplies.isEmpty else { return }
        let reply = self.pendingReplies.removeFirst()
        self.queuedBytes -= reply.utf8.count
        self.currentBytes = reply.utf8.count
        self.current = (reply.split(separator: " ", omittingEmptySubsequences: true), 0)
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
            let status = self.connection.send(text: #"{"type":"message_chunk","data":{"content":"# + chunk
                                              + #","source":"wordstream"}}"#)
            self.current = (words, next + 1)
            self.continueAfter(status)
        } else {
            let status = self.connection.send(
                text: #"{"type":"completion","status":"complete","data":{"words":\#(words.count)}}"#)
            self.current = nil
            self.currentBytes = 0
            if status == .ok { self.startNext() } else { self.continueAfter(status) }
        }
    }

    /// The next word after the delay, unless the client is behind (wait for `didBecomeWritable`) or gone.
    private func continueAfter(_ status: HostStatus) {
        switch status {
        case .ok: self.current == nil ? self.startNext() : self.scheduleTick()
        case .backpressure: self.paused = true
        default: self.current = nil  // closed: on_close follows
        }
    }

    public func didBecomeWritable() {
        guard self.paused else { return }
        self.paused = false
        self.continueAfter(.ok)
    }

    public func didClose(code: UInt16, reason: String) {
        self.pendingReplies.removeAll()
        self.current = nil
    }
}

@c public func agenthost_plugin_entry_v1(_ hostABIMinor: UInt32) -> UnsafePointer<agenthost_plugin_v1>? {
    PluginExport.descriptor(for: WordStream.self)
}
