// A Swift plugin file whose entry refuses every host: the tests build it with and without -static-stdlib to check
// what the loader reads before dlopen (whether it brought its own Swift runtime, which toolchain compiled it).

@_cdecl("agenthost_plugin_entry_v1")
public func agenthostPluginEntry(_ hostMinor: UInt32) -> UnsafeRawPointer? { nil }

/// Swift metadata the file carries like any Swift plugin (a type and a conformance).
public struct FixtureMarker: CustomStringConvertible {
    public var description: String { "swift_entry" }
}
