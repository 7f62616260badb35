import AgentHostAuth
import AgentHostCore
import Testing

/// F4: plugins key run ownership on issuer and subject, so the issuer must say which credential a client used.
/// API keys have `api-key`, client certificates `mtls:<CA>`; a token cannot claim either.
@Suite("Credential kinds")
struct CredentialKindTests {
    @Test(arguments: ["api-key", "mtls:CN=Test CA"])
    func aTokenCannotClaimTheIssuerOfAnotherCredentialKind(_ issuer: String) async throws {
        // No issuer configured: any signed `iss` would otherwise pass.
        let authenticator = try await TokenAuthenticatorTests.hmacAuthenticator { $0.issuer = nil }
        var claims = TokenAuthenticatorTests.goodClaims
        claims["iss"] = issuer
        let result = await authenticator.authenticate(
            TokenAuthenticatorTests.request(authorization: "Bearer \(try TokenAuthenticatorTests.token(claims: claims))"))
        #expect(result == .rejected("token issuer \(issuer) is reserved for API keys and client certificates"))
    }

    @Test func reservedIssuersAreTheOtherKinds() {
        #expect(Identity.isReservedIssuer(Identity.apiKeyIssuer))
        #expect(Identity.isReservedIssuer(Identity.certificateIssuerPrefix + "CN=Some CA"))
        #expect(!Identity.isReservedIssuer("https://login.example.com"))
        #expect(!Identity.isReservedIssuer(""))
    }
}
