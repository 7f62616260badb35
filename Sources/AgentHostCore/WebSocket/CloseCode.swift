/// RFC 6455 close codes and the rules about which may appear on the wire.
public enum CloseCode {
    public static let normal: UInt16 = 1000
    public static let goingAway: UInt16 = 1001
    public static let protocolError: UInt16 = 1002
    public static let unsupportedData: UInt16 = 1003
    /// Never on the wire: "no status code was present".
    public static let noStatus: UInt16 = 1005
    /// Never on the wire: "the connection was closed abnormally".
    public static let abnormal: UInt16 = 1006
    public static let invalidPayload: UInt16 = 1007
    public static let policyViolation: UInt16 = 1008
    public static let messageTooBig: UInt16 = 1009
    public static let internalError: UInt16 = 1011
    public static let serviceRestart: UInt16 = 1012
    public static let tryAgainLater: UInt16 = 1013

    /// Whether `code` may be sent or received in a close frame (RFC 6455 section 7.4 and the IANA registry):
    /// 1000-1003 and 1007-1014 are defined; 3000-4999 belong to libraries and applications.
    /// 1004, 1005, 1006 and 1015 are reserved, 1016-2999 unassigned, below 1000 and from 5000 up invalid.
    public static func isSendable(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }
}
