import AgentHostCore
import Crypto
import Foundation
import JWTKit
import NIOHTTP1

/// Authenticates upgrade requests by bearer token: a JWT (HS256/384/512 from a secret file, RS256, ES256 or EdDSA
/// from PEM files or a JWKS file) or a static API key (configured only as its SHA-256).
///
/// Token sources, in order: `Authorization: Bearer <token>`; a `Sec-WebSocket-Protocol` entry `bearer.<token>`
/// (browsers cannot set headers on a WebSocket); and, only when enabled, `?token=<token>` (AutoGen Studio clients).
/// Signature checking is jwt-kit's; the rest (algorithm allowlist, `exp`/`nbf` with leeway, `iss`, `aud`) is here,
/// so every refusal can say precisely what was wrong.
public final class TokenAuthenticator: ConnectionAuthenticator {
    public let configuration: AuthConfiguration
    private let keys: JWTKeyCollection
    /// The `alg` values accepted; anything else (including "none") is refused before any key is tried.
    private let acceptedAlgorithms: Set<String>
    /// Each key's one algorithm, by kid: a token naming a key must use that key's algorithm.
    private let keyAlgorithms: [String: String]
    private let apiKeyHashes: [(hash: [UInt8], key: AuthConfiguration.APIKey)]

    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads the configured key files. Throws a `SetupError` naming the file and the problem.
    public static func make(_ configuration: AuthConfiguration) async throws -> TokenAuthenticator {
        let keys = JWTKeyCollection()
        var algorithms: Set<String> = []
        var keyAlgorithms: [String: String] = [:]
        if let path = configuration.hmacSecretFile {
            let secret = try Self.read(path).trimmingCharacters(in: .whitespacesAndNewlines)
            guard secret.utf8.count >= 32 else {
                throw SetupError(description: "\(path): an HMAC secret needs at least 32 bytes")
            }
            let digest: DigestAlgorithm
            switch configuration.hmacAlgorithm {
            case "HS256": digest = .sha256
            case "HS384": digest = .sha384
            case "HS512": digest = .sha512
            default: throw SetupError(description: "hmac_algorithm must be HS256, HS384 or HS512")
            }
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest, kid: JWKIdentifier(string: "hmac"))
            algorithms.insert(configuration.hmacAlgorithm)
            keyAlgorithms["hmac"] = configuration.hmacAlgorithm
        }
        for (index, file) in configuration.publicKeyFiles.enumerated() {
            let pem = try Self.read(file.path)
            let kid = JWKIdentifier(string: "pem-\(index)")
            do {
                switch file.algorithm {
                case "RS256":
                    await keys.add(rsa: try Insecure.RSA.PublicKey(pem: pem), digestAlgorithm: .sha256, kid: kid)
                case "ES256":
                    await keys.add(ecdsa: try ES256PublicKey(pem: pem), kid: kid)
                case "EdDSA":
                    await keys.add(eddsa: try EdDSA.PublicKey(pem: pem), kid: kid)
                default:
                    throw SetupError(description: "\(file.path): algorithm must be RS256, ES256 or EdDSA")
                }
            } catch let error as SetupError {
                throw error
            } catch {
                throw SetupError(description: "\(file.path): not a \(file.algorithm) public key in PEM: \(error)")
            }
            algorithms.insert(file.algorithm)
            keyAlgorithms[kid.string] = file.algorithm
        }
        if let path = configuration.jwksFile {
            // A config mistake is reported as one, whatever the file holds.
            do { try JWKSKeySet.check(rsaAlgorithm: configuration.jwksRSAAlgorithm) } catch {
                throw SetupError(description: "\(error)")
            }
            let json = try Self.read(path)
            do {
                let keySet = try JWKSKeySet(json: json, rsaAlgorithm: configuration.jwksRSAAlgorithm)
                try await keys.add(jwksJSON: keySet.json)
                algorithms.formUnion(keySet.algorithms)
                keyAlgorithms.merge(keySet.algorithmsByKeyID) { _, fromJWKS in fromJWKS }
            } catch {
                throw SetupError(description: "\(path): not a usable JWKS: \(error)")
            }
        }
        return TokenAuthenticator(configuration: configuration, keys: keys, acceptedAlgorithms: algorithms,
                                  keyAlgorithms: keyAlgorithms)
    }

    private init(configuration: AuthConfiguration, keys: JWTKeyCollection, acceptedAlgorithms: Set<String>,
                 keyAlgorithms: [String: String]) {
        self.configuration = configuration
        self.keys = keys
        self.acceptedAlgorithms = acceptedAlgorithms
        self.keyAlgorithms = keyAlgorithms
        self.apiKeyHashes = configuration.apiKeys.map { (Self.hexBytes($0.sha256), $0) }
    }

    // MARK: ConnectionAuthenticator

    public func authenticate(_ request: AuthenticationRequest) async -> AuthenticationResult {
        await self.authenticate(request.head)
    }

    /// The token (or key) the request carries, if any; a client certificate is `ClientCertificateAuthenticator`'s.
    public func authenticate(_ request: HTTPRequestHead) async -> AuthenticationResult {
        // Two credentials are ambiguous: a proxy and the host could each read a different one.
        if request.headers["authorization"].count > 1 {
            return .rejected("more than one Authorization header")
        }
        if let authorization = request.headers.first(name: "authorization") {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].trimmingCharacters(in: .whitespaces).isEmpty
            else { return .rejected("the Authorization header must be 'Bearer <token>'") }
        }
        guard let (token, carrier) = self.extractToken(request) else { return .anonymous }
        let result: Result<Identity, Refusal>
        if token.split(separator: ".", omittingEmptySubsequences: false).count == 3 {
            result = await self.verifyJWT(token)
        } else {
            result = self.verifyAPIKey(token)
        }
        switch result {
        case .success(let identity): return .authenticated(identity, tokenProtocol: carrier)
        case .failure(let refusal): return .rejected(refusal.reason)
        }
    }

    struct Refusal: Error {
        let reason: String
    }

    /// The token and, when a `Sec-WebSocket-Protocol` entry carried it, that entry.
    func extractToken(_ request: HTTPRequestHead) -> (token: String, protocolEntry: String?)? {
        if let authorization = request.headers.first(name: "authorization") {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                return (String(parts[1]).trimmingCharacters(in: .whitespaces), nil)
            }
        }
        for entry in request.headers[canonicalForm: "sec-websocket-protocol"] where entry.hasPrefix("bearer.") {
            return (String(entry.dropFirst("bearer.".count)), String(entry))
        }
        if self.configuration.allowQueryToken, let query = request.uri.split(separator: "?", maxSplits: 1).dropFirst().first {
            for pair in query.split(separator: "&") where pair.hasPrefix("token=") {
                let value = pair.dropFirst("token=".count)
                return ((value.removingPercentEncoding ?? String(value)), nil)
            }
        }
        return nil
    }

    // MARK: JWT

    private func verifyJWT(_ token: String) async -> Result<Identity, Refusal> {
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard let headerData = Self.base64URLDecode(segments[0]),
            let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
            let algorithm = header["alg"] as? String
        else { return .failure(Refusal(reason: "malformed token")) }
        guard self.acceptedAlgorithms.contains(algorithm) else {
            return .failure(Refusal(reason: "token algorithm \(algorithm) is not accepted"))
        }
        if let kid = header["kid"] as? String, let keyAlgorithm = self.keyAlgorithms[kid], keyAlgorithm != algorithm {
            return .failure(Refusal(reason: "token algorithm \(algorithm) is not the algorithm of key \(kid)"))
        }
        let claims: Claims
        do {
            claims = try await self.keys.verify(token, as: Claims.self, iteratingKeys: true)
        } catch {
            return .failure(Refusal(reason: "token signature or format is invalid"))
        }
        let now = Date()
        let leeway = TimeInterval(self.configuration.leewaySeconds)
        guard let expiry = claims.exp?.value else { return .failure(Refusal(reason: "token has no exp claim")) }
        guard expiry.addingTimeInterval(leeway) > now else { return .failure(Refusal(reason: "token expired")) }
        if let notBefore = claims.nbf?.value, notBefore.addingTimeInterval(-leeway) > now {
            return .failure(Refusal(reason: "token not valid yet"))
        }
        if let issuer = self.configuration.issuer, claims.iss != issuer {
            return .failure(Refusal(reason: "token issuer is not \(issuer)"))
        }
        if let issuer = claims.iss, Identity.isReservedIssuer(issuer) {
            return .failure(Refusal(reason: "token issuer \(issuer) is reserved for API keys and client certificates"))
        }
        if let audience = self.configuration.audience, !(claims.aud?.value.contains(audience) ?? false) {
            return .failure(Refusal(reason: "token audience does not include \(audience)"))
        }
        let claimsJSON = Self.base64URLDecode(segments[1]).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        var scopes = claims.scope?.split(separator: " ").map(String.init) ?? []
        scopes += claims.scopes ?? []
        scopes += claims.roles ?? []
        return .success(Identity(subject: claims.sub ?? "", issuer: claims.iss ?? "", scopes: scopes,
                                 claimsJSON: claimsJSON))
    }

    /// The claims AgentHost reads; time claims are checked by the authenticator itself, with leeway.
    struct Claims: JWTPayload {
        var sub: String?
        var iss: String?
        var aud: AudienceClaim?
        var exp: ExpirationClaim?
        var nbf: NotBeforeClaim?
        var iat: IssuedAtClaim?
        var scope: String?
        var scopes: [String]?
        var roles: [String]?

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    // MARK: API keys

    private func verifyAPIKey(_ token: String) -> Result<Identity, Refusal> {
        let presented = Array(SHA256.hash(data: Array(token.utf8)))
        // Compare against every key, in constant time each: neither which key nor how much matched leaks.
        var match: AuthConfiguration.APIKey?
        for (hash, key) in self.apiKeyHashes where ConstantTime.equals(hash, presented) { match = key }
        guard let key = match else { return .failure(Refusal(reason: "token is neither a valid JWT nor a known API key")) }
        let claims = #"{"sub":"# + JSONText.quoted(key.subject) + #","iss":"# + JSONText.quoted(Identity.apiKeyIssuer) + "}"
        return .success(Identity(subject: key.subject, issuer: Identity.apiKeyIssuer, scopes: key.scopes,
                                 claimsJSON: claims))
    }

    // MARK: Helpers

    private static func read(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SetupError(description: "cannot read \(path): \(error.localizedDescription)")
        }
    }

    static func base64URLDecode(_ text: some StringProtocol) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }
}
