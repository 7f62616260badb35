import Foundation

/// Whether a JSONSerialization value was `true`/`false` in the JSON. On Linux every NSNumber casts to Bool (`1 is
/// Bool` holds), so the check reads the number's stored type instead ("c": a boolean).
func isJSONBoolean(_ value: Any) -> Bool {
    guard let number = value as? NSNumber else { return false }
    return String(cString: number.objCType) == "c"
}
