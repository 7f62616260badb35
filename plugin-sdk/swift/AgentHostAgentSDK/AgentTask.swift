import AgentHostPluginSDK
import Foundation

/// The task of a `start` frame: text, or an AutoGen message (or list of them) in its dumped JSON form.
public struct AgentTask: Sendable {
    /// The task's text: the string itself, or the `content` of a message (the last, for a list).
    public var text: String
    /// The task as a JSON value, as the client sent it (re-serialized when it is an object or list).
    public var json: String

    public init(text: String) {
        self.init(text: text, json: JSONText.quoted(text))
    }

    init(text: String, json: String) {
        self.text = text
        self.json = json
    }

    init?(_ value: Any) {
        if let text = value as? String {
            self.init(text: text)
            return
        }
        guard JSONSerialization.isValidJSONObject(value),
            let bytes = try? JSONSerialization.data(withJSONObject: value)
        else { return nil }
        let last = (value as? [Any])?.last ?? value
        guard let message = last as? [String: Any] else { return nil }
        self.init(text: message["content"] as? String ?? "", json: String(decoding: bytes, as: UTF8.self))
    }
}
