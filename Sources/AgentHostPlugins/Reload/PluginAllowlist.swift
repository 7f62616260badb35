import Glibc

/// An optional list of the plugin files the host may load, each pinned to its SHA-256, in `sha256sum` format so
/// operators can write it with `sha256sum *.so > allowlist`:
///
///     3f5a...e1  libagenthost-echo.so
///
/// A file whose name is not listed, or whose bytes hash to anything else, is refused.
public struct PluginAllowlist: Sendable, Equatable {
    public let hashes: [String: String]

    public init(hashes: [String: String]) {
        self.hashes = hashes
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func load(path: String) throws -> PluginAllowlist {
        guard let file = fopen(path, "r") else {
            throw ParseError(description: "cannot read allowlist \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            text += chunk[..<count]
        }
        return try self.parse(String(decoding: text, as: UTF8.self), source: path)
    }

    public static func parse(_ text: String, source: String = "allowlist") throws -> PluginAllowlist {
        var hashes: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: " \t\r")
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count == 2 else {
                throw ParseError(description: "\(source):\(index + 1): expected '<sha256>  <file name>'")
            }
            let hash = fields[0].lowercased()
            let name = fields[1].hasPrefix("*") ? String(fields[1].dropFirst()) : fields[1]  // sha256sum -b marks
            guard hash.count == 64, hash.allSatisfy({ $0.isHexDigit }) else {
                throw ParseError(description: "\(source):\(index + 1): '\(fields[0])' is not a SHA-256 in hex")
            }
            guard !name.contains("/") else {
                throw ParseError(description: "\(source):\(index + 1): give the file name only, not a path")
            }
            hashes[name] = hash
        }
        return PluginAllowlist(hashes: hashes)
    }

    /// Nil if `fileName` with `sha256` may load, else why not.
    public func refusal(fileName: String, sha256: String) -> String? {
        guard let expected = self.hashes[fileName] else { return "not in the allowlist" }
        guard expected == sha256 else { return "sha256 \(sha256) does not match the allowlist (\(expected))" }
        return nil
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in characters: String) -> String {
        let set = Set(characters)
        return String(self.drop(while: { set.contains($0) }).reversed().drop(while: { set.contains($0) }).reversed())
    }
}
