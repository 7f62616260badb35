import AgentHostAuth
import AgentHostSettings
import ArgumentParser
import Foundation
import JWTKit

/// `agenthost token`: mints a JWT for local development with the HMAC secret of the config file's `auth` section.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a JWT for local development from the configured HMAC secret.")

    @Option(help: "The config file whose auth.hmac_secret_file (and issuer, audience) to use.")
    var config: String

    @Option(help: "The token's subject (sub).")
    var subject: String

    @Option(name: .customLong("scope"), help: "A scope to grant; repeat for several.")
    var scopes: [String] = []

    @Option(help: "Lifetime in seconds (default 3600).")
    var lifetime: Int = 3600

    struct Claims: JWTPayload {
        var sub: String
        var iss: String?
        var aud: AudienceClaim?
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim
        var iat: IssuedAtClaim
        var scope: String?

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    func run() async throws {
        let settings = try ServeSettings.resolve(configFile: self.config, commandLine: [])
        guard let auth = settings.auth, let secretFile = auth.hmacSecretFile else {
            throw ValidationError("\(self.config) has no auth.hmac_secret_file to sign with")
        }
        guard (1...31_536_000).contains(self.lifetime) else { throw ValidationError("--lifetime must be 1 to 31536000") }
        let secret = try String(contentsOfFile: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let digest: DigestAlgorithm = auth.hmacAlgorithm == "HS512" ? .sha512 : auth.hmacAlgorithm == "HS384" ? .sha384 : .sha256
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest)
        let now = Date()
        let claims = Claims(
            sub: self.subject, iss: auth.issuer, aud: auth.audience.map { AudienceClaim(value: [$0]) },
            exp: .init(value: now.addingTimeInterval(TimeInterval(self.lifetime))), nbf: .init(value: now),
            iat: .init(value: now), scope: self.scopes.isEmpty ? nil : self.scopes.joined(separator: " "))
        print(try await keys.sign(claims))
    }
}
