import AgentHostPlugins
import Glibc

extension LoadedPlugin {
    struct MissingSymbol: Error, CustomStringConvertible {
        let description: String
    }

    /// A `const char *name(void)` exported by a test fixture, looked up in the very copy the host dlopen'd
    /// (RTLD_NOLOAD finds it without loading another; the host opened it RTLD_LOCAL).
    func stringFunction(_ name: String) throws -> @convention(c) () -> UnsafePointer<CChar> {
        guard let handle = dlopen(self.stagedFile, RTLD_NOW | RTLD_NOLOAD), let symbol = dlsym(handle, name) else {
            throw MissingSymbol(description: "\(name) not found in \(self.stagedFile)")
        }
        return unsafeBitCast(symbol, to: (@convention(c) () -> UnsafePointer<CChar>).self)
    }

    /// The lines logged so far by the lifecycle_recorder fixture.
    func recordedLines() throws -> [String] {
        String(cString: try self.stringFunction("recorder_log")()).split(separator: "\n").map(String.init)
    }
}
