import NIOCore

/// What the host knows about a connection when it opens: route, peer, and (once authentication exists) identity.
public struct ConnectionInfo: Sendable {
    public var route: String
    public var requestTarget: String
    public var remoteAddress: String
    public var subprotocol: String?
    public var identity: Identity

    public init(route: String, requestTarget: String, remoteAddress: String, subprotocol: String? = nil,
                identity: Identity = .anonymous) {
        self.route = route
        self.requestTarget = requestTarget
        self.remoteAddress = remoteAddress
        self.subprotocol = subprotocol
        self.identity = identity
    }
}

/// The authenticated party behind a connection.
public struct Identity: Sendable, Equatable {
    public var subject: String
    public var issuer: String
    public var scopes: [String]
    /// The verified claims as a JSON object.
    public var claimsJSON: String

    public static let anonymous = Identity(subject: "", issuer: "", scopes: [], claimsJSON: "{}")

    /// The issuer of every API-key identity, and the prefix of every client-certificate (mTLS) identity's issuer
    /// (`mtls:` and the CA's name). Tokens cannot claim either (the authenticator refuses such an `iss`), so
    /// issuer and subject together say which credential a client used: plugins key ownership on both.
    public static let apiKeyIssuer = "api-key"
    public static let certificateIssuerPrefix = "mtls:"

    /// Whether a token's `iss` would pass for an API key or a client certificate.
    public static func isReservedIssuer(_ issuer: String) -> Bool {
        issuer == apiKeyIssuer || issuer.hasPrefix(certificateIssuerPrefix)
    }

    public init(subject: String, issuer: String, scopes: [String], claimsJSON: String) {
        self.subject = subject
        self.issuer = issuer
        self.scopes = scopes
        self.claimsJSON = claimsJSON
    }
}

/// Why a connection ended, as told to its session.
public enum WebSocketFailure: Sendable, Equatable {
    case protocolError(String)
    case invalidData(String)
    case tooLarge(String)
    case timeout(String)
    case transport(String)
    case policy(String)
}

/// An upgrade request as an endpoint's `admit` sees it: credentials removed (the Authorization header, the `token`
/// query parameter, `bearer.` subprotocol entries); the identity says who it is.
public struct UpgradeRequest: Sendable {
    public var route: String
    public var requestTarget: String
    public var remoteAddress: String
    /// Every header but Authorization and Sec-WebSocket-Protocol, names lower-cased, in order.
    public var headers: [(name: String, value: String)]
    /// The subprotocols the client offered, in order, credentials removed.
    public var subprotocols: [String]
    public var identity: Identity

    public init(route: String, requestTarget: String, remoteAddress: String, headers: [(name: String, value: String)],
                subprotocols: [String], identity: Identity) {
        self.route = route
        self.requestTarget = requestTarget
        self.remoteAddress = remoteAddress
        self.headers = headers
        self.subprotocols = subprotocols
        self.identity = identity
    }
}

/// An endpoint's answer to an upgrade request.
public enum UpgradeDecision: Sendable, Equatable {
    /// Upgrade, selecting `subprotocol` (one the client offered), or the host's own choice when nil.
    case accept(subprotocol: String?)
    /// Answer with this HTTP status (400-599) and body; no connection opens.
    case refuse(status: Int, body: String)
}

/// A route's handler: creates one session per accepted connection.
///
/// The core calls everything here on the connection's event loop. The plugin layer implements this protocol by
/// adapting a plugin's C function table; built-in endpoints implement it directly.
public protocol WebSocketEndpoint: AnyObject, Sendable {
    /// A short name for logs and metrics.
    var name: String { get }

    /// A client completed the handshake. Return the session that will receive this connection's events,
    /// or throw to refuse it (the host closes with 1011). Consumes the reservation made for this connection.
    func openSession(connection: WebSocketConnection, info: ConnectionInfo) throws -> any WebSocketSession

    /// The upgrade guard chose this endpoint for a connection: keep it alive for that connection until
    /// `openSession` or `cancelReservation`. False if the endpoint no longer takes connections.
    func reserve() -> Bool

    /// The reserved connection will not open (it closed, or its upgrade failed).
    func cancelReservation()

    /// Decides on an upgrade the host's own checks, authentication and route policy passed, before the 101. On
    /// the connection's event loop; must not block. Only endpoints that want a say implement it.
    var decidesUpgrades: Bool { get }
    func admit(_ request: UpgradeRequest) -> UpgradeDecision
}

extension WebSocketEndpoint {
    public func reserve() -> Bool { true }
    public func cancelReservation() {}
    public var decidesUpgrades: Bool { false }
    public func admit(_ request: UpgradeRequest) -> UpgradeDecision { .accept(subprotocol: nil) }
}

/// The per-connection receiver of events. All calls arrive on the connection's event loop, one at a time.
public protocol WebSocketSession: AnyObject {
    /// A complete message. `data` is only valid during the call.
    func didReceive(kind: WebSocketMessageKind, data: ByteBuffer)
    /// A deferred event: something posted to the connection, or a timer it started.
    func didReceive(event: DeferredEvent)
    /// The connection's outbound queue drained below its low-water mark after a send was refused for backpressure.
    func didBecomeWritable()
    /// Something failed; `didClose` follows.
    func didFail(_ failure: WebSocketFailure)
    /// The connection is closed. Called exactly once, last.
    func didClose(code: UInt16, reason: String)
}

public enum WebSocketMessageKind: Sendable, Equatable {
    case text
    case binary
}
