import Crypto

/// The SQLite store's key for a log's name (route, owner, secret hash, key): the first 8 bytes of a SHA-256 over
/// the length-prefixed fields, as a signed 64-bit integer.
///
/// Why not a UNIQUE index over the fields themselves: its entries are ~100 bytes (a route, an issuer URL, a 32-byte
/// secret hash, a run id), and run ids are random, so every write-behind batch dirtied most of its pages (each one
/// a WAL frame; 4 KiB pages then, 16 KiB now): measured at 46 runs per batch, that index was half the CPU of
/// storing a run. An 8-byte key packs ~200 entries a 4 KiB page, ~800 a 16 KiB one. Lookups still compare every
/// field, so a collision can never hand a caller someone else's log. By chance one is unlikely (about 3 in 10^12
/// among the default 10,000 kept logs, 3 in 10^8 among a million); on purpose a client can only make its own two
/// names collide (a birthday pair: a second preimage of another's name costs 2^64). The second of two colliding
/// names is refused by the store like a name another worker took: the run is ended with the terminal entry that
/// says so.
enum LogNameHash {
    /// The secret hash that belongs to a name: an anonymous owner's (no subject) only; an identified owner's
    /// name has none, whatever a record carries.
    static func secretHash(subject: String, _ secretHash: [UInt8]) -> [UInt8] {
        subject.isEmpty ? secretHash : []
    }

    /// The key of a name; `secretHash` is normalised (see above) first.
    static func of(route: String, issuer: String, subject: String, secretHash: [UInt8], key: [UInt8]) -> Int64 {
        var hasher = SHA256()
        let secretHash = Self.secretHash(subject: subject, secretHash)
        for field in [Array(route.utf8), Array(issuer.utf8), Array(subject.utf8), secretHash, key] {
            var length = UInt32(field.count).littleEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: field)
        }
        return hasher.finalize().withUnsafeBytes { Int64(bitPattern: UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
    }
}
