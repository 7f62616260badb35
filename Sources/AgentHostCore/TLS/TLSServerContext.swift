// BoringSSL is the copy swift-nio-ssl builds and links (its `CNIOBoringSSL` module); see TLSServerHandler for why
// the server drives it itself instead of through NIOSSLHandler.
@preconcurrency import CNIOBoringSSL

/// A configured BoringSSL server context (`SSL_CTX`): certificate chain and key, TLS 1.2 at least, ALPN `http/1.1`,
/// and, with a client CA, mandatory client certificates verified against it. Immutable once built, so connections
/// on every event loop create their sessions from it at once; a reload builds a new one and connections already
/// open keep theirs (BoringSSL counts the references).
public final class TLSServerContext: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Clients must present a certificate that verifies against the client CA (mTLS).
    public let verifiesClientCertificates: Bool

    init(settings: TLSSettings) throws {
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_method()) else {
            throw TLSContextProvider.LoadError(description: "cannot create a TLS context: \(TLSError.drainQueue())")
        }
        self.pointer = context
        self.verifiesClientCertificates = settings.clientCAFile != nil
        // From here on `deinit` frees the context, also when a step below throws.
        guard SSL_CTX_set_min_proto_version(context, UInt16(TLS1_2_VERSION)) == 1 else {
            throw TLSContextProvider.LoadError(description: "cannot require TLS 1.2: \(TLSError.drainQueue())")
        }
        guard SSL_CTX_use_certificate_chain_file(context, settings.certificateChainFile) == 1 else {
            throw TLSContextProvider.LoadError(
                description: "\(settings.certificateChainFile): not a usable PEM certificate chain "
                    + "(\(TLSError.drainQueue()))")
        }
        guard SSL_CTX_use_PrivateKey_file(context, settings.privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw TLSContextProvider.LoadError(
                description: "\(settings.privateKeyFile): not a usable PEM private key (\(TLSError.drainQueue()))")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw TLSContextProvider.LoadError(
                description: "\(settings.privateKeyFile) is not the key of \(settings.certificateChainFile)")
        }
        if let clientCA = settings.clientCAFile {
            guard SSL_CTX_load_verify_locations(context, clientCA, nil) == 1 else {
                throw TLSContextProvider.LoadError(
                    description: "\(clientCA): not a usable PEM bundle of client CAs (\(TLSError.drainQueue()))")
            }
            // The CA names go in the CertificateRequest, so clients with several certificates pick the right one.
            if let names = SSL_load_client_CA_file(clientCA) { SSL_CTX_set_client_CA_list(context, names) }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        }
        SSL_CTX_set_alpn_select_cb(context, selectHTTP1, nil)
        // Sessions resume through tickets, which the server does not store; a server-side session cache would grow
        // with the number of clients, which is the memory this handler exists to keep flat.
        _ = SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF)
    }

    deinit { SSL_CTX_free(self.pointer) }
}

private let http11: [UInt8] = Array("http/1.1".utf8)

/// ALPN: `http/1.1` when the client offers it; a client that offers only other protocols gets no ALPN answer (and
/// speaks HTTP/1.1 or fails at the upgrade), as with swift-nio-ssl's server.
private func selectHTTP1(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let out, let outLength, let offered else { return SSL_TLSEXT_ERR_NOACK }
    let list = UnsafeBufferPointer(start: offered, count: Int(offeredLength))
    var index = 0
    while index < list.count {
        let length = Int(list[index])
        let start = index + 1
        guard start + length <= list.count else { break }
        if length == http11.count && list[start..<(start + length)].elementsEqual(http11) {
            // BoringSSL allows the answer to point into the client's list.
            out.pointee = offered + start
            outLength.pointee = UInt8(length)
            return SSL_TLSEXT_ERR_OK
        }
        index = start + length
    }
    return SSL_TLSEXT_ERR_NOACK
}
