import AgentHostClientSupport
import Foundation

/// A throwaway self-signed certificate for the wss figures, made with the openssl command (CI installs it).
struct SelfSignedCertificate {
    let directory: String
    var certificatePath: String { self.directory + "/cert.pem" }
    var keyPath: String { self.directory + "/key.pem" }

    static func make() throws -> SelfSignedCertificate {
        let directory = NSTemporaryDirectory() + "agenthost-bench-tls-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificate = SelfSignedCertificate(directory: directory)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                             "-nodes", "-keyout", certificate.keyPath, "-out", certificate.certificatePath,
                             "-days", "1", "-subj", "/CN=localhost"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("openssl could not make a test certificate") }
        return certificate
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}
