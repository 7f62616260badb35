import Foundation

/// What a plugin file says about the Swift it was built with, read before it is loaded (from `ELFImage`).
///
/// The host links the Swift runtime dynamically and a Swift plugin must use that one runtime: a plugin built with
/// `-static-stdlib` carries a second copy (~9 MB), and two Swift runtimes in one process each keep their own type
/// metadata, conformance caches and concurrency executors (../shared/design/plugin-abi.md). Such a file is refused
/// before anything maps it, and so is every Swift plugin when the host itself was built with a static runtime. A
/// plugin compiled by another Swift toolchain loads against this host's runtime, which Swift does not promise to
/// work on Linux (no ABI stability there): it loads, with a warning naming both (or saying its toolchain is unknown).
///
/// Swift code is told by its metadata sections (`swift5_*`) holding something: SwiftPM links C plugins with swiftc,
/// which adds those sections empty (and a dependency on libswiftCore.so) to C code too.
struct SwiftBuild: Equatable, Sendable {
    /// The note the Swift toolchain's compiler leaves in `.comment` ("clang version 21.0.0
    /// (https://github.com/swiftlang/llvm-project.git 11673e6...)"; `apple/llvm-project` before the move): swiftc
    /// is built on that llvm-project, so the commit names the toolchain. Nil when the file has none (stripped).
    let toolchain: String?
    /// Swift code that does not link `libswiftCore.so`: it brought a Swift runtime of its own.
    let carriesOwnRuntime: Bool

    /// Nil for a file without Swift code (no `swift5_` metadata section holds anything): a C, C++ or Rust plugin.
    init?(_ image: ELFImage) {
        guard image.sectionSizes.contains(where: { $0.key.hasPrefix("swift5_") && $0.value > 0 }) else { return nil }
        self.carriesOwnRuntime = !image.neededLibraries.contains { $0.hasPrefix("libswiftCore.so") }
        self.toolchain = Self.toolchainNote(in: image.compilerNotes)
    }

    static func toolchainNote(in notes: [String]) -> String? {
        notes.first { $0.contains("/llvm-project") }
    }

    /// Whether this process runs the shared Swift runtime (`libswiftCore.so` is loaded): a host built with
    /// `--static-swift-stdlib` has its own inside, and every Swift plugin would bring a second one.
    static let hostRuntimeIsShared: Bool = dlopen("libswiftCore.so", RTLD_NOW | RTLD_NOLOAD) != nil

    /// The refusal of any Swift plugin by a host that carries a static Swift runtime.
    static let staticHostRefusal = "this host was built with a static Swift runtime (--static-swift-stdlib): a Swift "
        + "plugin would load a second one. Rebuild agenthost without --static-swift-stdlib to load Swift plugins"

    /// The warning for a Swift plugin whose toolchain cannot be told (its `.comment` was stripped).
    static let unknownToolchainWarning = "plugin's Swift toolchain is unknown (no compiler note: stripped?): it must "
        + "be the host's (agenthost version); Swift promises no ABI stability on Linux"

    /// The toolchain that built this host, from its own executable's `.comment`; nil if it cannot be read.
    static let host: String? = Self.toolchainNote(in: ELFImage.compilerNotes(ofFileAt: "/proc/self/exe"))

    /// The warning for a plugin from another toolchain (loaded: a patch release apart often works).
    static let otherToolchainWarning = "plugin built with another Swift toolchain than the host: Swift promises no "
        + "ABI stability on Linux; rebuild it with the host's (agenthost version)"

    /// The refusal for a plugin that brought its own runtime, saying what to change.
    static let ownRuntimeRefusal = "it carries its own Swift runtime (built with -static-stdlib): a second Swift "
        + "runtime in the host's process breaks type metadata, casts and concurrency. Build it without "
        + "-static-stdlib (and without -static-executable), with the host's Swift toolchain (agenthost version)"
}

extension ELFImage {
    /// The `.comment` strings of a large file (the host's own executable, ~90 MB), reading only its headers and
    /// that section. Empty when the file cannot be read or is not a 64-bit little-endian ELF file.
    static func compilerNotes(ofFileAt path: String) -> [String] {
        guard let file = FileHandle(forReadingAtPath: path), let size = try? file.seekToEnd() else { return [] }
        defer { try? file.close() }
        // Offsets and sizes come from the file: anything past its end is refused before seeking (a seek past
        // Int64.max traps).
        func read(_ offset: UInt64, _ count: Int) -> [UInt8]? {
            guard count >= 0, count <= 1 << 24, offset <= size, UInt64(count) <= size - offset,
                  (try? file.seek(toOffset: offset)) != nil,
                  let data = try? file.read(upToCount: count), data.count == count else { return nil }
            return Array(data)
        }
        guard let header = read(0, 64), header[0] == 0x7F, header[1] == 0x45, header[2] == 0x4C, header[3] == 0x46,
              header[4] == 2, header[5] == 1 else { return [] }
        let tableOffset = Self.u64(header, 0x28)
        let entrySize = Int(Self.u16(header, 0x3A))
        let count = Int(Self.u16(header, 0x3C))
        let namesIndex = Int(Self.u16(header, 0x3E))
        guard entrySize >= 64, namesIndex < count, let table = read(tableOffset, entrySize * count) else { return [] }
        func section(_ index: Int) -> (name: Int, offset: UInt64, size: UInt64) {
            let at = index * entrySize
            return (Int(Self.u32(table, at)), Self.u64(table, at + 24), Self.u64(table, at + 32))
        }
        let namesSection = section(namesIndex)
        guard namesSection.size <= 1 << 20, let names = read(namesSection.offset, Int(namesSection.size)) else { return [] }
        let comment = Array(".comment".utf8) + [0]
        for index in 0..<count {
            let entry = section(index)
            guard entry.name + comment.count <= names.count,
                  Array(names[entry.name..<entry.name + comment.count]) == comment else { continue }
            guard entry.size <= 1 << 16, let bytes = read(entry.offset, Int(entry.size)) else { return [] }
            return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        }
        return []
    }
}
