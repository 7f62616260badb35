/// Reads the dynamic symbols a shared object exports, from its bytes, before anything maps it.
///
/// Why by hand: `dlopen` runs a library's constructors (C `__attribute__((constructor))`, C++ static initialisers,
/// the Swift runtime's image registration) before the host can look for the entry symbol, so any `.so` dropped in the
/// plugin directory, plugin or not, would run code in the host (a copy of a system library did, and left the host
/// unable to exit). Reading `.dynsym` first means a file that is not a plugin for this machine is refused having run
/// nothing. No package in reach parses ELF, and this needs 64-bit little-endian section headers and one symbol table.
struct ELFExports {
    struct NotAPlugin: Error {
        let reason: String
    }

    /// The names of the defined, global or weak function symbols in `.dynsym`.
    let functions: Set<String>

    init(_ bytes: [UInt8]) throws(NotAPlugin) {
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            throw NotAPlugin(reason: "not an ELF file")
        }
        guard bytes[4] == 2, bytes[5] == 1 else { throw NotAPlugin(reason: "not a 64-bit little-endian ELF file") }
        guard Self.u16(bytes, 16) == 3 else { throw NotAPlugin(reason: "not a shared object (ELF type \(Self.u16(bytes, 16)))") }
        guard Self.u16(bytes, 18) == Self.hostMachine else {
            throw NotAPlugin(reason: "built for ELF machine \(Self.u16(bytes, 18)), not this host's (\(Self.hostMachine))")
        }
        let sectionOffset = Self.u64(bytes, 0x28)
        let sectionSize = Int(Self.u16(bytes, 0x3A))
        let sectionCount = Int(Self.u16(bytes, 0x3C))
        guard sectionSize >= 64, sectionCount > 0, sectionOffset > 0,
            sectionOffset <= UInt64(bytes.count), UInt64(bytes.count) - sectionOffset >= UInt64(sectionSize * sectionCount)
        else { throw NotAPlugin(reason: "its section headers are missing or out of the file") }
        let base = Int(sectionOffset)
        func section(_ index: Int) -> (type: UInt32, offset: UInt64, size: UInt64, link: Int, entrySize: UInt64) {
            let at = base + index * sectionSize
            return (Self.u32(bytes, at + 4), Self.u64(bytes, at + 24), Self.u64(bytes, at + 32),
                    Int(Self.u32(bytes, at + 40)), Self.u64(bytes, at + 56))
        }
        guard let symbolIndex = (0..<sectionCount).first(where: { section($0).type == 11 }) else {  // SHT_DYNSYM
            throw NotAPlugin(reason: "it exports no dynamic symbols")
        }
        let symbols = section(symbolIndex)
        guard symbols.link < sectionCount else { throw NotAPlugin(reason: "its symbol table names no string table") }
        let strings = section(symbols.link)
        guard symbols.entrySize >= 24, Self.fits(symbols.offset, symbols.size, in: bytes),
            Self.fits(strings.offset, strings.size, in: bytes)
        else { throw NotAPlugin(reason: "its symbol tables are out of the file") }
        var functions: Set<String> = []
        let stringsStart = Int(strings.offset)
        let stringsEnd = stringsStart + Int(strings.size)
        for index in 0..<Int(symbols.size / symbols.entrySize) {
            let at = Int(symbols.offset) + index * Int(symbols.entrySize)
            let info = bytes[at + 4]
            let binding = info >> 4
            guard info & 0xF == 2, binding == 1 || binding == 2, Self.u16(bytes, at + 6) != 0 else { continue }
            let nameStart = stringsStart + Int(Self.u32(bytes, at))
            guard nameStart < stringsEnd, let nameEnd = bytes[nameStart..<stringsEnd].firstIndex(of: 0) else { continue }
            functions.insert(String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self))
        }
        self.functions = functions
    }

    #if arch(x86_64)
    static let hostMachine: UInt16 = 62  // EM_X86_64
    #elseif arch(arm64)
    static let hostMachine: UInt16 = 183  // EM_AARCH64
    #else
    static let hostMachine: UInt16 = 0
    #endif

    private static func fits(_ offset: UInt64, _ size: UInt64, in bytes: [UInt8]) -> Bool {
        offset <= UInt64(bytes.count) && size <= UInt64(bytes.count) - offset
    }

    private static func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }

    private static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
    }

    private static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) }
    }
}
