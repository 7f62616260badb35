@preconcurrency import CNIOBoringSSL
import NIOCore

/// One server-side TLS session: a BoringSSL `SSL` whose transport is a BIO over two `ByteBuffer`s, ciphertext in and
/// ciphertext out. Both exist only while they hold bytes: `inbound` is the socket's own read buffer (no copy) until
/// BoringSSL has consumed it, `outbound` is allocated at the first record of a flush and handed to the channel whole.
/// An idle session therefore holds no buffer of its own; BoringSSL frees its record buffers when empty too.
///
/// Not thread-safe: used from its channel's event loop only.
final class TLSSession {
    enum HandshakeProgress {
        case complete
        case needsMoreInput
        case failed(TLSError)
    }

    enum ReadEnd {
        /// Everything readable was read; the rest of a record (if any) has yet to arrive.
        case needsMoreInput
        /// The peer sent close_notify.
        case closedByPeer
        case failed(TLSError)
    }

    private let ssl: OpaquePointer
    private let allocator: ByteBufferAllocator
    private var inbound: ByteBuffer?
    private(set) var outbound: ByteBuffer?

    init(context: TLSServerContext, allocator: ByteBufferAllocator) throws {
        ERR_clear_error()
        guard let ssl = SSL_new(context.pointer) else {
            throw TLSError(stage: .setUp, reason: TLSError.drainQueue())
        }
        self.ssl = ssl
        self.allocator = allocator
        guard let bio = BIO_new(Self.bioMethod) else {
            throw TLSError(stage: .setUp, reason: TLSError.drainQueue())
        }
        // The BIO points at this session unretained: the session owns the SSL, which owns the BIO, so the BIO
        // never outlives the session.
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
        BIO_set_init(bio, 1)
        SSL_set_bio(ssl, bio, bio)  // one reference, used for both directions
        SSL_set_accept_state(ssl)
        // The handshake configuration (certificate, verification settings) stays in the context; the session need
        // not keep its own copy once the handshake is done.
        SSL_set_shed_handshake_config(ssl, 1)
    }

    deinit { SSL_free(self.ssl) }

    /// Bytes that arrived from the network, kept as they are (the socket's read buffer) until BoringSSL reads them.
    /// BoringSSL reads whatever is there, keeping a partial record in its own buffer, so `inbound` is normally empty
    /// when the next read arrives; appending is for the case where it is not.
    func receive(_ ciphertext: inout ByteBuffer) {
        if self.inbound == nil || self.inbound!.readableBytes == 0 {
            self.inbound = ciphertext
        } else {
            self.inbound!.writeBuffer(&ciphertext)
        }
    }

    func handshake() -> HandshakeProgress {
        ERR_clear_error()
        let result = SSL_do_handshake(self.ssl)
        defer { self.releaseConsumedInput() }
        if result == 1 { return .complete }
        switch SSL_get_error(self.ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .needsMoreInput
        default:
            return .failed(TLSError(stage: .handshake, reason: self.failureReason()))
        }
    }

    /// Decrypts everything the buffered ciphertext holds, into one buffer sized by what arrived.
    func readPlaintext() -> (ByteBuffer?, ReadEnd) {
        defer { self.releaseConsumedInput() }
        var plaintext: ByteBuffer?
        while true {
            if plaintext == nil {
                // Plaintext is shorter than the ciphertext it came from (each record adds at least 21 bytes), so
                // this fits all of it but the rest of a record begun in an earlier read (at most 16 KiB), for which
                // the buffer grows.
                let expected = (self.inbound?.readableBytes ?? 0) + Int(SSL_pending(self.ssl))
                plaintext = self.allocator.buffer(capacity: min(max(expected, 64), Self.maximumRecordPlaintext))
            }
            ERR_clear_error()
            var result: Int32 = 0
            plaintext!.writeWithUnsafeMutableBytes(minimumWritableBytes: 1) { pointer in
                result = SSL_read(self.ssl, pointer.baseAddress, Int32(clamping: pointer.count))
                return max(Int(result), 0)
            }
            if result > 0 { continue }
            let delivered = plaintext!.readableBytes > 0 ? plaintext : nil
            switch SSL_get_error(self.ssl, result) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return (delivered, .needsMoreInput)
            case SSL_ERROR_ZERO_RETURN:
                return (delivered, .closedByPeer)
            default:
                return (delivered, .failed(TLSError(stage: .read, reason: self.failureReason())))
            }
        }
    }

    /// Encrypts one write into `outbound`. The BIO accepts every byte, so BoringSSL never returns a partial write.
    func write(_ plaintext: ByteBuffer) -> TLSError? {
        guard plaintext.readableBytes > 0 else { return nil }
        ERR_clear_error()
        let result = plaintext.withUnsafeReadableBytes { bytes in
            SSL_write(self.ssl, bytes.baseAddress, Int32(clamping: bytes.count))
        }
        if result == plaintext.readableBytes { return nil }
        return TLSError(stage: .write, reason: self.failureReason())
    }

    /// Queues close_notify in `outbound`. Does not wait for the peer's.
    func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(self.ssl)
    }

    /// Bytes of ciphertext waiting in `outbound`.
    var outboundBytes: Int { self.outbound?.readableBytes ?? 0 }

    /// The ciphertext produced since the last call, if any.
    func takeCiphertext() -> ByteBuffer? {
        defer { self.outbound = nil }
        return self.outbound
    }

    /// The certificate the client presented and BoringSSL verified (mTLS), DER-encoded.
    func peerCertificateDER() -> [UInt8]? {
        guard let certificate = SSL_get_peer_certificate(self.ssl) else { return nil }
        defer { X509_free(certificate) }
        guard SSL_get_verify_result(self.ssl) == X509_V_OK else { return nil }
        var bytes: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(certificate, &bytes)
        guard length > 0, let bytes else { return nil }
        defer { OPENSSL_free(bytes) }
        return Array(UnsafeBufferPointer(start: bytes, count: Int(length)))
    }

    /// Buffer bytes this session holds beyond BoringSSL's own state (what an idle connection should keep: 0).
    var heldBufferCapacity: Int {
        (self.inbound?.capacity ?? 0) + (self.outbound?.capacity ?? 0)
    }

    private func failureReason() -> String {
        let verify = SSL_get_verify_result(self.ssl)
        let queue = TLSError.drainQueue()
        // INVALID_CALL: no certificate was verified (a plaintext client, a version mismatch): nothing to add.
        guard verify != X509_V_OK, verify != X509_V_ERR_INVALID_CALL,
              let text = X509_verify_cert_error_string(verify) else { return queue }
        return "\(queue) (client certificate: \(String(cString: text)))"
    }

    private func releaseConsumedInput() {
        if let inbound = self.inbound, inbound.readableBytes == 0 { self.inbound = nil }
    }

    // MARK: - The BIO BoringSSL reads from and writes to

    fileprivate func bioRead(into destination: UnsafeMutableRawBufferPointer) -> Int32 {
        guard var inbound = self.inbound, inbound.readableBytes > 0 else { return -1 }
        self.inbound = nil  // one reference while it is read from, so no copy-on-write
        let count = min(destination.count, inbound.readableBytes)
        inbound.readWithUnsafeReadableBytes { source in
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(count)))
            return count
        }
        self.inbound = inbound
        return Int32(count)
    }

    fileprivate func bioWrite(from source: UnsafeRawBufferPointer) -> Int32 {
        if self.outbound == nil {
            // Sized for what is written now; a flush of several messages grows it (ByteBuffer doubles).
            self.outbound = self.allocator.buffer(capacity: max(source.count, 512))
        }
        self.outbound!.writeBytes(source)
        return Int32(source.count)
    }

    static let maximumRecordPlaintext = 16 * 1024

    nonisolated(unsafe) private static let bioMethod: OpaquePointer = {
        guard let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "AgentHost TLS session") else {
            fatalError("BoringSSL could not allocate a BIO method")
        }
        BIO_meth_set_read(method, sessionBIORead)
        BIO_meth_set_write(method, sessionBIOWrite)
        BIO_meth_set_ctrl(method, sessionBIOControl)
        return method
    }()
}

private func session(of bio: OpaquePointer?) -> TLSSession? {
    guard let bio, let data = BIO_get_data(bio) else { return nil }
    return Unmanaged<TLSSession>.fromOpaque(data).takeUnretainedValue()
}

private func sessionBIORead(_ bio: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ length: Int32) -> Int32 {
    BIO_clear_retry_flags(bio)
    guard let session = session(of: bio), let buffer, length > 0 else { return 0 }
    let count = session.bioRead(into: UnsafeMutableRawBufferPointer(start: buffer, count: Int(length)))
    if count < 0 { BIO_set_retry_read(bio) }
    return count
}

private func sessionBIOWrite(_ bio: OpaquePointer?, _ buffer: UnsafePointer<CChar>?, _ length: Int32) -> Int32 {
    BIO_clear_retry_flags(bio)
    guard let session = session(of: bio), let buffer, length > 0 else { return 0 }
    return session.bioWrite(from: UnsafeRawBufferPointer(start: buffer, count: Int(length)))
}

private func sessionBIOControl(_ bio: OpaquePointer?, _ command: Int32, _ larg: Int,
                               _ parg: UnsafeMutableRawPointer?) -> Int {
    // BoringSSL asks the transport to flush after each flight; the bytes are already in `outbound`.
    command == BIO_CTRL_FLUSH ? 1 : 0
}
