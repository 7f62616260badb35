import Foundation
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// Where the server's TLS material lives; re-read on SIGHUP.
public struct TLSSettings: Sendable, Equatable {
    /// PEM: the server certificate followed by its intermediates (the full chain).
    public var certificateChainFile: String
    /// PEM private key of the certificate.
    public var privateKeyFile: String
    /// PEM bundle of the CAs that sign client certificates. Set: clients must present a certificate (mTLS), and its
    /// subject becomes the connection's identity.
    public var clientCAFile: String?

    public init(certificateChainFile: String, privateKeyFile: String, clientCAFile: String? = nil) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.clientCAFile = clientCAFile
    }
}

/// Holds the TLS context new connections get (`TLSServerContext`: TLS 1.2 at least, ALPN `http/1.1`). The certificate
/// and key are first read with swift-nio-ssl's PEM parsers, which name what is wrong with them. `reload()` builds a new
/// context from the files and swaps it in; a bad new certificate or key is refused and the context in service stays
/// (connections already open keep theirs either way).
public final class TLSContextProvider: Sendable {
    public let settings: TLSSettings
    private let context: Mutex<TLSServerContext>

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(settings: TLSSettings) throws {
        self.settings = settings
        self.context = Mutex(try Self.makeContext(settings))
    }

    var current: TLSServerContext { self.context.withLock { $0 } }

    /// Re-reads the certificate chain and key; throws (and keeps the old context) if they are unusable.
    public func reload() throws {
        let fresh = try Self.makeContext(self.settings)
        self.context.withLock { $0 = fresh }
    }

    static func makeContext(_ settings: TLSSettings) throws -> TLSServerContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(settings.certificateChainFile)
        } catch {
            throw LoadError(description: "\(settings.certificateChainFile): not a PEM certificate chain (\(error))")
        }
        guard let leaf = chain.first else {
            throw LoadError(description: "\(settings.certificateChainFile): no certificate in the file")
        }
        do {
            key = try NIOSSLPrivateKey(file: settings.privateKeyFile, format: .pem)
        } catch {
            throw LoadError(description: "\(settings.privateKeyFile): not a PEM private key (\(error))")
        }
        try Self.checkPair(certificate: leaf, key: key, settings: settings)
        // The client CA bundle is read once, by BoringSSL, which names the file and its reason when it is unusable.
        return try TLSServerContext(settings: settings)
    }

    /// A certificate with the wrong key would only fail at each client's handshake: refuse it up front.
    private static func checkPair(certificate: NIOSSLCertificate, key: NIOSSLPrivateKey, settings: TLSSettings) throws {
        do {
            let parsed = try Certificate(derEncoded: try certificate.toDERBytes())
            let privateKey = try Certificate.PrivateKey(pemEncoded: try String(contentsOfFile: settings.privateKeyFile, encoding: .utf8))
            guard privateKey.publicKey == parsed.publicKey else {
                throw LoadError(description: "\(settings.privateKeyFile) is not the key of \(settings.certificateChainFile)")
            }
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(description: "cannot check \(settings.privateKeyFile) against its certificate: \(error)")
        }
    }

    /// The subject of a verified client certificate, as an identity. Its issuer is `mtls:` and the CA's name: a
    /// kind no JWT can claim (the token authenticator refuses an `iss` starting with `mtls:`), so plugins that key
    /// on issuer and subject never mistake a certificate for a token with the same names.
    static func identity(ofDER certificate: [UInt8]) -> Identity? {
        guard let parsed = try? Certificate(derEncoded: certificate) else { return nil }
        let subject = parsed.subject.description
        let issuer = parsed.issuer.description
        let claims = #"{"cert_subject":"# + JSONText.quoted(subject) + #","cert_issuer":"# + JSONText.quoted(issuer) + "}"
        return Identity(subject: subject, issuer: Identity.certificateIssuerPrefix + issuer, scopes: [],
                        claimsJSON: claims)
    }
}
