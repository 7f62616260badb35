/// How connections authenticate: which JWT keys are trusted, which claims are required, which API keys exist.
public struct AuthConfiguration: Sendable, Equatable {
    public struct PublicKeyFile: Sendable, Equatable {
        public var path: String
        /// RS256, ES256 or EdDSA.
        public var algorithm: String

        public init(path: String, algorithm: String) {
            self.path = path
            self.algorithm = algorithm
        }
    }

    /// A static API key. Only its SHA-256 is configured: the key itself never sits in a config file.
    public struct APIKey: Sendable, Equatable {
        public var sha256: String
        public var subject: String
        public var scopes: [String]

        public init(sha256: String, subject: String, scopes: [String]) {
            self.sha256 = sha256.lowercased()
            self.subject = subject
            self.scopes = scopes
        }
    }

    /// A file holding the HMAC secret (at least 32 bytes) for HS256/384/512 tokens.
    public var hmacSecretFile: String?
    public var hmacAlgorithm = "HS256"
    public var publicKeyFiles: [PublicKeyFile] = []
    public var jwksFile: String?
    /// The algorithm of JWKS RSA keys that carry no `alg` (RS256/384/512, PS256/384/512): fixed at load, so a
    /// token cannot choose it (EC and OKP keys take theirs from the curve).
    public var jwksRSAAlgorithm = "RS256"
    /// Required `iss`, if set.
    public var issuer: String?
    /// An entry required in `aud`, if set.
    public var audience: String?
    /// Clock skew tolerated on `exp` and `nbf`.
    public var leewaySeconds = 30
    public var apiKeys: [APIKey] = []
    /// Accept `?token=` (for AutoGen Studio clients). Off by default: URLs end up in proxies' and browsers' logs.
    public var allowQueryToken = false

    public init() {}
}
