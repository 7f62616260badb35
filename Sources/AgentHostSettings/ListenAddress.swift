/// `HOST:PORT` (port 0 picks a free port).
struct ListenAddress: Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init?(parsing value: String) {
        guard let colon = value.lastIndex(of: ":") else { return nil }
        var host = String(value[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil  // an IPv6 address without brackets: which colon starts the port is a guess
        }
        guard let port = Int(value[value.index(after: colon)...]), (0...65535).contains(port), !host.isEmpty,
            !host.contains(where: { $0.isWhitespace || $0 == "[" || $0 == "]" || $0 == "/" })
        else { return nil }
        self.init(host: host, port: port)
    }

    var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
}
