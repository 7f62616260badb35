import AgentHostAuth
import AgentHostCore
import Crypto
import Foundation
import JWTKit
import NIOHTTP1
import Testing

/// Every way a credential can be wrong, against the real authenticator and real keys made at test time.
@Suite("Token authentication")
struct TokenAuthenticatorTests {
    static let secret = "an-hmac-secret-for-tests-only-0123456789"

    /// A directory with the HMAC secret file, and an authenticator for it (issuer and audience required).
    static func hmacAuthenticator(configure: (inout AuthConfiguration) -> Void = { _ in }) async throws -> TokenAuthenticator {
        let directory = try PluginFixtures.makeDirectory()
        try Data(Self.secret.utf8).write(to: URL(fileURLWithPath: "\(directory)/secret"))
        var configuration = AuthConfiguration()
        configuration.hmacSecretFile = "\(directory)/secret"
        configuration.issuer = "https://issuer.test"
        configuration.audience = "agenthost"
        configure(&configuration)
        return try await TokenAuthenticator.make(configuration)
    }

    static func request(authorization: String? = nil, protocols: [String] = [], target: String = "/agents/x") -> HTTPRequestHead {
        var headers = HTTPHeaders()
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        if !protocols.isEmpty { headers.add(name: "Sec-WebSocket-Protocol", value: protocols.joined(separator: ", ")) }
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: headers)
    }

    /// A hand-made HS token: any header, any claims, HMAC with any hash (or no signature at all).
    static func token(header: [String: Any] = ["alg": "HS256", "typ": "JWT"], claims: [String: Any],
                      hash: String = "HS256", sign: Bool = true) throws -> String {
        func segment(_ object: [String: Any]) throws -> String {
            try JSONSerialization.data(withJSONObject: object).base64URLEncoded
        }
        let input = "\(try segment(header)).\(try segment(claims))"
        guard sign else { return input + "." }
        let key = SymmetricKey(data: Data(Self.secret.utf8))
        let signature: Data
        switch hash {
        case "HS384": signature = Data(HMAC<SHA384>.authenticationCode(for: Data(input.utf8), using: key))
        default: signature = Data(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: key))
        }
        return input + "." + signature.base64URLEncoded
    }

    static var now: Int { Int(Date().timeIntervalSince1970) }

    static var goodClaims: [String: Any] {
        ["sub": "alice", "iss": "https://issuer.test", "aud": ["agenthost"], "exp": now + 600, "nbf": now - 10,
         "scope": "agents:run agents:read", "team": "blue"]
    }

    @Test func acceptsAValidTokenAndHandsOverTheIdentity() async throws {
        let authenticator = try await Self.hmacAuthenticator()
        let result = await authenticator.authenticate(Self.request(authorization: "Bearer \(try Self.token(claims: Self.goodClaims))"))
        guard case .authenticated(let identity, let carrier) = result else {
            Issue.record("expected success, got \(result)")
            return
        }
        #expect(carrier == nil)
        #expect(identity.subject == "alice")
        #expect(identity.issuer == "https://issuer.test")
        #expect(identity.scopes == ["agents:run", "agents:read"])
        let claims = try JSONSerialization.jsonObject(with: Data(identity.claimsJSON.utf8)) as? [String: Any]
        #expect(claims?["team"] as? String == "blue")
    }

    @Test func noCredentialsIsAnonymous() async throws {
        let authenticator = try await Self.hmacAuthenticator()
        #expect(await authenticator.authenticate(Self.request()) == .anonymous)
    }

    @Test(arguments: [
        ("expired", ["exp": -120], "token expired"),
        ("not yet valid", ["nbf": 120], "token not valid yet"),
        ("wrong issuer", [:], "token issuer is not https://issuer.test"),
        ("wrong audience", [:], "token audience does not include agenthost"),
        ("no expiry", ["exp": 0], "token has no exp claim"),
    ] as [(String, [String: Int], String)])
    func refusesBadClaims(name: String, change: [String: Int], reason: String) async throws {
        let authenticator = try await Self.hmacAuthenticator()
        var claims = Self.goodClaims
        for (key, offset) in change {
            switch key {
            case "exp" where offset == 0: claims["exp"] = nil
            case "exp", "nbf": claims[key] = Self.now + offset
            default: claims[key] = nil
            }
        }
        if name == "wrong issuer" { claims["iss"] = "https://evil.test" }
        if name == "wrong audience" { claims["aud"] = "someone-else" }
        let result = await authenticator.authenticate(Self.request(authorization: "Bearer \(try Self.token(claims: claims))"))
        #expect(result == .rejected(reason), "\(name)")
    }

    @Test func toleratesClockSkewWithinTheLeeway() async throws {
        let authenticator = try await Self.hmacAuthenticator { $0.leewaySeconds = 60 }
        var claims = Self.goodClaims
        claims["exp"] = Self.now - 30
        claims["nbf"] = Self.now + 30
        let result = await authenticator.authenticate(Self.request(authorization: "Bearer \(try Self.token(claims: claims))"))
        guard case .authenticated = result else { Issue.record("\(result)"); return }
    }

    @Test func refusesOtherAlgorithmsAndAlgNone() async throws {
        let authenticator = try await Self.hmacAuthenticator()
        let hs384 = try Self.token(header: ["alg": "HS384", "typ": "JWT"], claims: Self.goodClaims, hash: "HS384")
        #expect(await authenticator.authenticate(Self.request(authorization: "Bearer \(hs384)"))
                == .rejected("token algorithm HS384 is not accepted"))
        let none = try Self.token(header: ["alg": "none"], claims: Self.goodClaims, sign: false)
        #expect(await authenticator.authenticate(Self.request(authorization: "Bearer \(none)"))
                == .rejected("token algorithm none is not accepted"))
        // The right algorithm name on a signature made with another secret.
        var forged = try Self.token(claims: Self.goodClaims).split(separator: ".").map(String.init)
        forged[2] = Data(repeating: 7, count: 32).base64URLEncoded
        #expect(await authenticator.authenticate(Self.request(authorization: "Bearer \(forged.joined(separator: "."))"))
                == .rejected("token signature or format is invalid"))
    }

    @Test(arguments: ["a.b.c", "!!!.???.###", "eyJhbGciOiJIUzI1NiJ9..", ""])
    func refusesMalformedTokens(token: String) async throws {
        let authenticator = try await Self.hmacAuthenticator()
        let result = await authenticator.authenticate(Self.request(authorization: "Bearer \(token)"))
        guard case .rejected = result else { Issue.record("\(token): \(result)"); return }
    }

    @Test func readsTheTokenFromAWebSocketProtocolEntryForBrowsers() async throws {
        let authenticator = try await Self.hmacAuthenticator()
        let entry = "bearer.\(try Self.token(claims: Self.goodClaims))"
        let result = await authenticator.authenticate(Self.request(protocols: ["agenthost.v1", entry]))
        #expect(result == .authenticated(
            Identity(subject: "alice", issuer: "https://issuer.test", scopes: ["agents:run", "agents:read"],
                     claimsJSON: { if case .authenticated(let i, _) = result { return i.claimsJSON } else { return "" } }()),
            tokenProtocol: entry))
    }

    @Test func readsQueryTokensOnlyWhenEnabled() async throws {
        let token = try Self.token(claims: Self.goodClaims)
        let off = try await Self.hmacAuthenticator()
        #expect(await off.authenticate(Self.request(target: "/agents/x?token=\(token)")) == .anonymous)
        let on = try await Self.hmacAuthenticator { $0.allowQueryToken = true }
        guard case .authenticated = await on.authenticate(Self.request(target: "/agents/x?run=1&token=\(token)")) else {
            Issue.record("query token not read")
            return
        }
    }

    @Test func acceptsAPIKeysByTheirHashOnly() async throws {
        let key = "ak_live_0123456789abcdef"
        let hash = SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
        let authenticator = try await Self.hmacAuthenticator {
            $0.apiKeys = [AuthConfiguration.APIKey(sha256: hash, subject: "ci-bot", scopes: ["agents:run"])]
        }
        let good = await authenticator.authenticate(Self.request(authorization: "Bearer \(key)"))
        guard case .authenticated(let identity, _) = good else { Issue.record("\(good)"); return }
        #expect(identity.subject == "ci-bot" && identity.issuer == "api-key" && identity.scopes == ["agents:run"])
        #expect(await authenticator.authenticate(Self.request(authorization: "Bearer ak_live_wrong"))
                == .rejected("token is neither a valid JWT nor a known API key"))
    }

    @Test(arguments: [
        ("RS256", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        ("ES256", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ("EdDSA", ["genpkey", "-algorithm", "ed25519"]),
    ])
    func verifiesPublicKeyAlgorithmsFromPEM(algorithm: String, generate: [String]) async throws {
        let directory = try PluginFixtures.makeDirectory()
        try Self.openssl(generate + ["-out", "\(directory)/private.pem"])
        try Self.openssl(["pkey", "-in", "\(directory)/private.pem", "-pubout", "-out", "\(directory)/public.pem"])
        var configuration = AuthConfiguration()
        configuration.publicKeyFiles = [.init(path: "\(directory)/public.pem", algorithm: algorithm)]
        let authenticator = try await TokenAuthenticator.make(configuration)

        let pem = try String(contentsOfFile: "\(directory)/private.pem", encoding: .utf8)
        let signers = JWTKeyCollection()
        switch algorithm {
        case "RS256": await signers.add(rsa: try Insecure.RSA.PrivateKey(pem: pem), digestAlgorithm: .sha256)
        case "ES256": await signers.add(ecdsa: try ES256PrivateKey(pem: pem))
        default: await signers.add(eddsa: try EdDSA.PrivateKey(pem: pem))
        }
        let token = try await signers.sign(MinimalClaims(sub: "bob", exp: .init(value: Date().addingTimeInterval(60))))
        let result = await authenticator.authenticate(Self.request(authorization: "Bearer \(token)"))
        guard case .authenticated(let identity, _) = result else { Issue.record("\(algorithm): \(result)"); return }
        #expect(identity.subject == "bob")
        // An HMAC token is not accepted by a server that trusts only this public key.
        let hmac = try Self.token(claims: Self.goodClaims)
        #expect(await authenticator.authenticate(Self.request(authorization: "Bearer \(hmac)"))
                == .rejected("token algorithm HS256 is not accepted"))
    }

    @Test func verifiesTokensAgainstAJWKSFile() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try Self.openssl(["genpkey", "-algorithm", "ed25519", "-out", "\(directory)/private.pem"])
        try Self.openssl(["pkey", "-in", "\(directory)/private.pem", "-pubout", "-outform", "DER",
                          "-out", "\(directory)/public.der"])
        // An Ed25519 SubjectPublicKeyInfo ends with the 32-byte raw key: that is the JWK's "x".
        let raw = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/public.der")).suffix(32)
        let jwks = #"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"k1","x":""# + Data(raw).base64URLEncoded + #""}]}"#
        try Data(jwks.utf8).write(to: URL(fileURLWithPath: "\(directory)/jwks.json"))
        var configuration = AuthConfiguration()
        configuration.jwksFile = "\(directory)/jwks.json"
        let authenticator = try await TokenAuthenticator.make(configuration)

        let signers = JWTKeyCollection()
        await signers.add(eddsa: try EdDSA.PrivateKey(pem: try String(contentsOfFile: "\(directory)/private.pem", encoding: .utf8)),
                          kid: "k1")
        let token = try await signers.sign(MinimalClaims(sub: "carol", exp: .init(value: Date().addingTimeInterval(60))))
        let result = await authenticator.authenticate(Self.request(authorization: "Bearer \(token)"))
        guard case .authenticated(let identity, _) = result else { Issue.record("\(result)"); return }
        #expect(identity.subject == "carol")
        #expect(await authenticator.authenticate(Self.request(authorization: "Bearer \(try Self.token(claims: Self.goodClaims))"))
                == .rejected("token algorithm HS256 is not accepted"))
    }

    /// A JWKS RSA key without `alg` is fixed to RS256 at load: a token naming it with another algorithm is refused
    /// and cannot pin jwt-kit's signer for it (before the fix, one such token made every genuine token for the key
    /// fail until a restart). keyB's explicit RS384 is what lets an RS384 header past the algorithm allowlist.
    @Test func aTokenCannotChooseTheAlgorithmOfAJWKSKeyWithoutAlg() async throws {
        let directory = try PluginFixtures.makeDirectory()
        var jwks: [[String: String]] = []
        var privateKeys: [JWTKit.Insecure.RSA.PrivateKey] = []
        for (kid, alg) in [("keyA", nil), ("keyB", "RS384")] as [(String, String?)] {
            try Self.openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                              "-out", "\(directory)/\(kid).pem"])
            let key = try JWTKit.Insecure.RSA.PrivateKey(pem: try String(contentsOfFile: "\(directory)/\(kid).pem", encoding: .utf8))
            let (modulus, exponent) = try key.publicKey.getKeyPrimitives()
            var jwk = ["kty": "RSA", "kid": kid, "n": modulus.base64URLEncoded, "e": exponent.base64URLEncoded]
            jwk["alg"] = alg
            jwks.append(jwk)
            privateKeys.append(key)
        }
        // An encryption key (Keycloak publishes one) is left out, not a reason to refuse the file.
        jwks.append(["kty": "RSA", "kid": "keyC", "use": "enc", "alg": "RSA-OAEP", "n": jwks[0]["n"]!, "e": jwks[0]["e"]!])
        try JSONSerialization.data(withJSONObject: ["keys": jwks]).write(to: URL(fileURLWithPath: "\(directory)/jwks.json"))
        var configuration = AuthConfiguration()
        configuration.jwksFile = "\(directory)/jwks.json"
        let authenticator = try await TokenAuthenticator.make(configuration)

        let claims: [String: Any] = ["sub": "mallory", "exp": Self.now + 600]
        let forgedInput = try [["alg": "RS384", "kid": "keyA", "typ": "JWT"], claims]
            .map { try JSONSerialization.data(withJSONObject: $0).base64URLEncoded }.joined(separator: ".")
        let forged = forgedInput + "." + Data((0..<256).map { _ in UInt8.random(in: 0...255) }).base64URLEncoded
        #expect(await authenticator.authenticate(Self.request(authorization: "Bearer \(forged)"))
                == .rejected("token algorithm RS384 is not the algorithm of key keyA"))

        let signers = JWTKeyCollection()
        await signers.add(rsa: privateKeys[0], digestAlgorithm: .sha256, kid: "keyA")
        let genuine = try await signers.sign(MinimalClaims(sub: "dave", exp: .init(value: Date().addingTimeInterval(60))))
        let result = await authenticator.authenticate(Self.request(authorization: "Bearer \(genuine)"))
        guard case .authenticated(let identity, _) = result else { Issue.record("after a forged RS384 token: \(result)"); return }
        #expect(identity.subject == "dave")
    }

    @Test func refusesUnusableKeyConfigurationWithTheFileNamed() async throws {
        var configuration = AuthConfiguration()
        configuration.hmacSecretFile = "/nonexistent/secret"
        await #expect(throws: TokenAuthenticator.SetupError.self) { try await TokenAuthenticator.make(configuration) }
        let directory = try PluginFixtures.makeDirectory()
        try Data("short".utf8).write(to: URL(fileURLWithPath: "\(directory)/secret"))
        configuration.hmacSecretFile = "\(directory)/secret"
        do {
            _ = try await TokenAuthenticator.make(configuration)
            Issue.record("a 5-byte secret was accepted")
        } catch {
            #expect("\(error)".contains("at least 32 bytes"))
        }
    }

    static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.standardError = Pipe()
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PluginFixtures.CompileError(description: "openssl \(arguments.joined(separator: " ")) failed")
        }
    }
}

/// The least a token needs: a subject and an expiry (signed by jwt-kit with a test key).
struct MinimalClaims: JWTPayload {
    var sub: String
    var exp: ExpirationClaim
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

extension Data {
    var base64URLEncoded: String {
        self.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
