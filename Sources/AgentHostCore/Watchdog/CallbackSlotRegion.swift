import Synchronization

/// Which endpoint callback an event loop is running, in the words of the plugin ABI.
public enum WatchedCallback: UInt8, Sendable, CaseIterable {
    case open = 1, message, event, writable, close, error

    /// The ABI callback's name (`on_message`), as logged.
    public var abiName: String {
        switch self {
        case .open: return "on_open"
        case .message: return "on_message"
        case .event: return "on_event"
        case .writable: return "on_writable"
        case .close: return "on_close"
        case .error: return "on_error"
        }
    }
}

/// A callback an event loop was running when the region was read.
public struct BusyCallback: Sendable, Equatable {
    /// The event loop's slot.
    public var loop: Int
    /// The endpoint (plugin) name.
    public var endpoint: String
    public var callback: WatchedCallback
    /// When it started, in `CoarseClock` (CLOCK_MONOTONIC_COARSE) nanoseconds: the same clock in every process.
    public var startedNanoseconds: UInt64

    public init(loop: Int, endpoint: String, callback: WatchedCallback, startedNanoseconds: UInt64) {
        self.loop = loop
        self.endpoint = endpoint
        self.callback = callback
        self.startedNanoseconds = startedNanoseconds
    }

    /// `plugin crasher callback on_message`
    public var description: String { "plugin \(self.endpoint) callback \(self.callback.abiName)" }
}

/// The memory in which a worker's event loops say which plugin callback they are running: one slot per loop, a
/// table of endpoint names. A worker writes it; its supervisor maps the same file and reads it, both while the
/// worker runs (the watchdog: a slot busy past the limit) and after it died (the cause of a crash: the callback
/// its loops were in), so the dying process itself has nothing to do: no signal handler, nothing async-signal-safe
/// to get right, and a worker killed by SIGKILL or the OOM killer is explained the same way.
///
/// A callback costs two relaxed loads and two release stores on a cache line its own loop owns (each slot is one
/// 64-byte line; the supervisor reads it once per watchdog tick): a few nanoseconds next to a plugin call.
///
/// Layout (all little-endian UInt64, offsets in bytes): `0` magic; `64 + 64 * i` the name of endpoint `i`
/// (a length byte, then UTF-8; entry 0 unused); `slotsOffset + 64 * loop` a slot: started ns at `+0`, tag at `+8`
/// (`endpoint << 8 | callback`, 0 when idle).
public struct CallbackSlotRegion: @unchecked Sendable {
    // @unchecked: a view of raw memory; every access is an atomic load or store, or a name written once under
    // CallbackWatch's lock before any tag refers to it.
    public static let slotCount = 64
    public static let nameCapacity = 256
    static let nameBytes = 64
    static let namesOffset = 64
    static let slotsOffset = namesOffset + nameCapacity * nameBytes
    static let magic: UInt64 = 0x3153_544f_4c53_4841  // "AHSLOTS1"
    /// Bytes the region needs.
    public static let byteCount = slotsOffset + slotCount * 64

    public let base: UnsafeMutableRawPointer

    /// A view of `base`, which must hold `byteCount` bytes, zeroed or written by another view.
    public init(base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// A zeroed region of this process's own memory (a host without a supervisor).
    public static func privateRegion() -> CallbackSlotRegion {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: Self.byteCount, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: Self.byteCount)
        let region = CallbackSlotRegion(base: memory)
        region.word(0).pointee.store(Self.magic, ordering: .releasing)
        return region
    }

    /// Marks a fresh (zeroed) shared region as laid out by this version.
    public func format() {
        self.word(0).pointee.store(Self.magic, ordering: .releasing)
    }

    public var isFormatted: Bool { self.word(0).pointee.load(ordering: .acquiring) == Self.magic }

    @inline(__always)
    func word(_ offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        self.base.advanced(by: offset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The slot of event loop `loop` (0 ..< slotCount).
    public func slot(_ loop: Int) -> CallbackSlot {
        CallbackSlot(started: self.word(Self.slotsOffset + loop * 64), tag: self.word(Self.slotsOffset + loop * 64 + 8))
    }

    /// Writes endpoint name `index` (1 ..< nameCapacity); longer names are cut at 63 bytes.
    func writeName(_ name: String, at index: Int) {
        let bytes = Array(name.utf8.prefix(Self.nameBytes - 1))
        guard !bytes.isEmpty else { return }
        let entry = self.base.advanced(by: Self.namesOffset + index * Self.nameBytes)
        entry.storeBytes(of: UInt8(bytes.count), as: UInt8.self)
        bytes.withUnsafeBytes { entry.advanced(by: 1).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }

    func name(at index: Int) -> String {
        guard index > 0, index < Self.nameCapacity else { return "?" }
        let entry = self.base.advanced(by: Self.namesOffset + index * Self.nameBytes)
        let length = min(Int(entry.load(as: UInt8.self)), Self.nameBytes - 1)
        return String(decoding: UnsafeRawBufferPointer(start: entry.advanced(by: 1), count: length), as: UTF8.self)
    }

    /// Every loop that is inside a callback now (or was, when its process died).
    public func busyCallbacks() -> [BusyCallback] {
        var busy: [BusyCallback] = []
        for loop in 0..<Self.slotCount {
            let slot = self.slot(loop)
            // Started is stored last on entry: read it first, then the tag, then check it did not move.
            let started = slot.started.pointee.load(ordering: .acquiring)
            guard started != 0 else { continue }
            let tag = slot.tag.pointee.load(ordering: .acquiring)
            guard started == slot.started.pointee.load(ordering: .acquiring), tag != 0,
                let callback = WatchedCallback(rawValue: UInt8(truncatingIfNeeded: tag))
            else { continue }
            busy.append(BusyCallback(loop: loop, endpoint: self.name(at: Int(tag >> 8)), callback: callback,
                                     startedNanoseconds: started))
        }
        return busy
    }
}

/// One event loop's slot: what it is running, since when. Touched only by its loop's thread (and read by the
/// supervisor).
public struct CallbackSlot: @unchecked Sendable {
    let started: UnsafeMutablePointer<Atomic<UInt64>>
    let tag: UnsafeMutablePointer<Atomic<UInt64>>

    /// What the slot held before a callback: restored when it returns, so a callback run from inside another
    /// (a host call closing a second connection synchronously) leaves the outer one recorded again.
    public struct Mark {
        var started: UInt64
        var tag: UInt64
    }

    @inline(__always)
    public func enter(tag: UInt64, at now: UInt64) -> Mark {
        let mark = Mark(started: self.started.pointee.load(ordering: .relaxed),
                        tag: self.tag.pointee.load(ordering: .relaxed))
        self.tag.pointee.store(tag, ordering: .releasing)
        self.started.pointee.store(max(now, 1), ordering: .releasing)
        return mark
    }

    @inline(__always)
    public func leave(restoring mark: Mark) {
        self.started.pointee.store(mark.started, ordering: .releasing)
        self.tag.pointee.store(mark.tag, ordering: .releasing)
    }
}
