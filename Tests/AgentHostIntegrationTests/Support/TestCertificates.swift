import Foundation
import NIOSSL

/// A throwaway PKI made with openssl at test time: a CA, server certificates for 127.0.0.1/localhost signed by it,
/// and a client certificate (CN=alice) for mTLS.
struct TestCertificates {
    let directory: String
    var caCertificate: String { "\(self.directory)/ca.pem" }

    init() throws {
        self.directory = try PluginFixtures.makeDirectory()
        try self.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", "\(self.directory)/ca.key", "-out", self.caCertificate, "-days", "2",
                          "-subj", "/CN=AgentHost Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        try self.issue(name: "server", commonName: "localhost",
                       extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        try self.issue(name: "server2", commonName: "localhost-renewed",
                       extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        try self.issue(name: "client", commonName: "alice", extensions: "extendedKeyUsage=clientAuth\n")
    }

    func certificate(_ name: String) -> String { "\(self.directory)/\(name).pem" }
    func key(_ name: String) -> String { "\(self.directory)/\(name).key" }

    /// A client context trusting the test CA (or only the system roots, `trustingTestCA: false`), optionally with
    /// the client certificate.
    func clientContext(trustingTestCA: Bool = true, withClientCertificate: Bool = false) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = trustingTestCA ? .file(self.caCertificate) : .default
        configuration.applicationProtocols = ["http/1.1"]
        if withClientCertificate {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(self.certificate("client")).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: self.key("client"), format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    private func issue(name: String, commonName: String, extensions: String) throws {
        let extensionsFile = "\(self.directory)/\(name).ext"
        try Data(extensions.utf8).write(to: URL(fileURLWithPath: extensionsFile))
        try self.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", self.key(name), "-out", "\(self.directory)/\(name).csr", "-subj", "/CN=\(commonName)"])
        try self.openssl(["x509", "-req", "-in", "\(self.directory)/\(name).csr", "-CA", self.caCertificate,
                          "-CAkey", "\(self.directory)/ca.key", "-CAcreateserial", "-out", self.certificate(name),
                          "-days", "2", "-extfile", extensionsFile])
    }

    private func openssl(_ arguments: [String]) throws {
        try TokenAuthenticatorTests.openssl(arguments)
    }
}
