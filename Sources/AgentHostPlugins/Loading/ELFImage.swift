/// Reads what the loader checks in a shared object, from its bytes, before anything maps it: the functions it
/// exports, the libraries it needs, its section names and the compiler notes its build left (`.comment`).
///
/// Why by hand: `dlopen` runs a library's constructors (C `__attribute__((constructor))`, C++ static initialisers,
/// the Swift runtime's image registration) before the host can look for the entry symbol, so any `.so` dropped in the
/// plugin directory, plugin or not, would run code in the host (a copy of a system library did, and left the host
/// unable to exit). Reading `.dynsym` first means a file that is not a plugin for this machine is refused having run
/// nothing; the needed libraries and sections say whether a Swift plugin brought its own Swift runtime (see
/// `SwiftBuild`). No package in reach parses ELF, and this needs 64-bit little-endian section headers, one symbol
/// table, the dynamic section and two string sections. Only the symbol table is required: the rest, when missing
/// or out of the file, reads as empty.
struct ELFImage {
    struct NotAPlugin: Error {
        let reason: String
    }

    /// The names of the defined, global or weak function symbols in `.dynsym` (plain or GNU indirect functions) up
    /// to `maxNameLength` bytes long: the entry symbols are short, and a bounded read keeps a crafted file (a string
    /// table with no NUL and many symbols) from costing symbols x table size.
    let functions: Set<String>
    static let maxNameLength = 256
    /// `DT_NEEDED` entries read at most (real libraries need tens).
    static let maxNeededLibraries = 4096
    /// The `DT_NEEDED` entries of the dynamic section: the sonames the dynamic loader will load with it.
    let neededLibraries: [String]
    /// Its sections' sizes by name (`swift5_protocols`, ...).
    let sectionSizes: [String: UInt64]
    /// The strings of its `.comment` section: each compiler that built part of it names itself there.
    let compilerNotes: [String]

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
            // STT_FUNC or STT_GNU_IFUNC; global or weak; defined (a section index).
            guard info & 0xF == 2 || info & 0xF == 10, binding == 1 || binding == 2, Self.u16(bytes, at + 6) != 0
            else { continue }
            let nameStart = stringsStart + Int(Self.u32(bytes, at))
            guard nameStart < stringsEnd,
                  let nameEnd = bytes[nameStart..<min(stringsEnd, nameStart + Self.maxNameLength)].firstIndex(of: 0)
            else { continue }
            functions.insert(String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self))
        }
        self.functions = functions

        func contents(of header: (type: UInt32, offset: UInt64, size: UInt64, link: Int, entrySize: UInt64)) -> [UInt8]? {
            Self.fits(header.offset, header.size, in: bytes)
                ? Array(bytes[Int(header.offset)..<Int(header.offset + header.size)]) : nil
        }
        func string(at offset: Int, in table: [UInt8]) -> String? {
            guard offset >= 0, offset < table.count,
                  let end = table[offset..<min(table.count, offset + Self.maxNameLength)].firstIndex(of: 0)
            else { return nil }
            return String(decoding: table[offset..<end], as: UTF8.self)
        }
        var needed: [String] = []
        if let dynamicIndex = (0..<sectionCount).first(where: { section($0).type == 6 }) {  // SHT_DYNAMIC
            let dynamic = section(dynamicIndex)
            if dynamic.link < sectionCount, Self.fits(dynamic.offset, dynamic.size, in: bytes),
               let names = contents(of: section(dynamic.link)) {
                for index in 0..<Int(dynamic.size / 16) {
                    let at = Int(dynamic.offset) + index * 16
                    let tag = Self.u64(bytes, at)
                    if tag == 0 || needed.count >= Self.maxNeededLibraries { break }  // DT_NULL
                    if tag == 1, let name = string(at: Int(clamping: Self.u64(bytes, at + 8)), in: names) {  // DT_NEEDED
                        needed.append(name)
                    }
                }
            }
        }
        self.neededLibraries = needed
        var sizes: [String: UInt64] = [:]
        var notes: [String] = []
        let namesIndex = Int(Self.u16(bytes, 0x3E))  // e_shstrndx
        if namesIndex < sectionCount, let table = contents(of: section(namesIndex)) {
            for index in 0..<sectionCount {
                guard let name = string(at: Int(Self.u32(bytes, base + index * sectionSize)), in: table) else { continue }
                sizes[name, default: 0] += section(index).size
                if name == ".comment", section(index).size <= 1 << 16, let comment = contents(of: section(index)) {
                    notes = comment.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                }
            }
        }
        self.sectionSizes = sizes
        self.compilerNotes = notes
    }

    #if arch(x86_64)
    static let hostMachine: UInt16 = 62  // EM_X86_64
    #elseif arch(arm64)
    static let hostMachine: UInt16 = 183  // EM_AARCH64
    #else
    static let hostMachine: UInt16 = 0
    #endif

    static func fits(_ offset: UInt64, _ size: UInt64, in bytes: [UInt8]) -> Bool {
        offset <= UInt64(bytes.count) && size <= UInt64(bytes.count) - offset
    }

    static func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }

    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
    }

    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) }
    }
}
