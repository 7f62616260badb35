import Foundation

/// A JWKS file with every key's algorithm fixed at load.
///
/// Why: jwt-kit builds the signer of a JWK without `alg` for the algorithm of the first token that names the key,
/// and keeps it. One forged token (`{"alg":"RS384","kid":"keyA"}`, any signature) then pinned keyA to RS384, and
/// every genuine RS256 token for keyA failed until a restart. So the `alg` is decided here, once: the key's own
/// `alg` if it has one (checked against its type), else inferred from `kty`/`crv` (RSA keys, which fit six
/// algorithms, take the configured `jwks_rsa_algorithm`). jwt-kit gets the JWKS with `alg` written into every key,
/// and the authenticator refuses a token whose header `alg` is not its key's.
struct JWKSKeySet {
    /// The JWKS as jwt-kit should load it: every key with its `alg`.
    let json: String
    /// Each key's algorithm, by `kid` (keys without a kid are only tried for tokens without one).
    let algorithmsByKeyID: [String: String]
    /// Every algorithm some key uses.
    let algorithms: Set<String>

    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    static let rsaAlgorithms: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
    private static let curveAlgorithms = ["P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "Ed25519": "EdDSA"]

    /// - Parameters:
    ///   - json: the JWKS file's text.
    ///   - rsaAlgorithm: the algorithm of RSA keys without `alg` (one of `rsaAlgorithms`).
    init(json: String, rsaAlgorithm: String) throws {
        try Self.check(rsaAlgorithm: rsaAlgorithm)
        guard var object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let keys = object["keys"] as? [[String: Any]]
        else { throw Refusal(description: "not a JSON object with a \"keys\" list") }
        var fixed: [[String: Any]] = []
        var byKeyID: [String: String] = [:]
        for (index, var key) in keys.enumerated() where !Self.isEncryptionKey(key) {
            let name = (key["kid"] as? String).map { "key \($0)" } ?? "key #\(index)"
            let algorithm = try Self.algorithm(of: key, named: name, rsaAlgorithm: rsaAlgorithm)
            key["alg"] = algorithm
            if let kid = key["kid"] as? String { byKeyID[kid] = algorithm }
            fixed.append(key)
        }
        object["keys"] = fixed
        self.json = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        self.algorithmsByKeyID = byKeyID
        self.algorithms = Set(fixed.compactMap { $0["alg"] as? String })
    }

    /// A key for encrypting, not signing (Keycloak's JWKS has one beside its signing keys): left out, as before.
    private static func isEncryptionKey(_ key: [String: Any]) -> Bool {
        if key["use"] as? String == "enc" { return true }
        guard let alg = key["alg"] as? String else { return false }
        return alg == "RSA1_5" || alg.hasPrefix("RSA-OAEP") || alg.hasPrefix("ECDH-ES")
    }

    /// Refuses a configured `jwks_rsa_algorithm` that is not an RSA signature algorithm.
    static func check(rsaAlgorithm: String) throws {
        guard Self.rsaAlgorithms.contains(rsaAlgorithm) else {
            throw Refusal(description: "jwks_rsa_algorithm must be one of \(Self.rsaAlgorithms.sorted().joined(separator: ", "))")
        }
    }

    /// The key's `alg` if it fits its type, else the one its type implies.
    private static func algorithm(of key: [String: Any], named name: String, rsaAlgorithm: String) throws -> String {
        let stated = key["alg"] as? String
        switch key["kty"] as? String {
        case "RSA":
            guard let stated else { return rsaAlgorithm }
            guard Self.rsaAlgorithms.contains(stated) else {
                throw Refusal(description: "\(name): an RSA key cannot use alg \(stated)")
            }
            return stated
        case "EC", "OKP":
            guard let curve = key["crv"] as? String, let implied = Self.curveAlgorithms[curve] else {
                throw Refusal(description: "\(name): unsupported curve \(key["crv"] as? String ?? "(none)")")
            }
            guard stated == nil || stated == implied else {
                throw Refusal(description: "\(name): a \(curve) key cannot use alg \(stated ?? "")")
            }
            return implied
        case let other:
            throw Refusal(description: "\(name): unsupported key type \(other ?? "(none)") (RSA, EC or OKP)")
        }
    }
}
