/// What a term in a sentiment table does. A term may do several things at once (好 is a positive word
/// and a booster); `prefix` marks keys that begin a longer term, so a longest-match walk knows when to
/// stop extending.
struct TermFlags: OptionSet, Sendable {
    let rawValue: UInt8

    static let sentiment = TermFlags(rawValue: 1 << 0)
    static let negator = TermFlags(rawValue: 1 << 1)
    static let negatorAfter = TermFlags(rawValue: 1 << 2)
    static let booster = TermFlags(rawValue: 1 << 3)
    static let contrast = TermFlags(rawValue: 1 << 4)
    /// Some longer key starts with this one (plus, for spaced languages, a space).
    static let prefix = TermFlags(rawValue: 1 << 5)
    /// A neutral word that contains a listed term: it wins the longest match and means nothing.
    static let blocker = TermFlags(rawValue: 1 << 6)

    /// Everything but `prefix`: the key is a term in its own right.
    static let anyTerm: TermFlags = [.sentiment, .negator, .negatorAfter, .booster, .contrast, .blocker]
}

/// One entry of a ``TermTable``.
struct TermEntry: Sendable, Equatable {
    var flags: TermFlags
    /// VADER scale, −4…+4 (0 unless `.sentiment`).
    var valence: Float
    /// Booster strength, usually ±0.293 (0 unless `.booster`).
    var boost: Float
    /// For tables that merge several languages (language identification): one bit per language that
    /// lists the key as a stop word, and one per language whose lexicon has it.
    var stopMask: UInt16
    var lexiconMask: UInt16

    static let empty = TermEntry(flags: [], valence: 0, boost: 0, stopMask: 0, lexiconMask: 0)
}

/// An open-addressing hash table from UTF-8 byte strings to ``TermEntry``, built once and read without
/// allocating: the scorer looks up slices of its scratch buffer, never `String`s. Keys live in one
/// byte blob; probing is linear over a power-of-two slot array at most half full.
struct TermTable: Sendable {
    private struct Slot {
        var hash: UInt32
        var keyLength: UInt32
        var keyOffset: UInt32
        /// Index into `entries`, or −1 when the slot is empty.
        var entry: Int32
    }

    private var slots: [Slot]
    private var keys: [UInt8] = []
    private(set) var entries: [TermEntry] = []
    private var mask: Int
    /// The longest key, in bytes; the scorer never needs to look further.
    private(set) var maxKeyBytes = 0

    init(expectedCount: Int = 64) {
        var capacity = 16
        while capacity < expectedCount * 2 { capacity <<= 1 }
        self.slots = Array(repeating: Slot(hash: 0, keyLength: 0, keyOffset: 0, entry: -1), count: capacity)
        self.mask = capacity - 1
    }

    var count: Int { self.entries.count }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        // FNV-1a: keys are short (a word, a few CJK characters), so a byte loop is as fast as anything.
        var hash: UInt32 = 2_166_136_261
        for byte in bytes {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return hash
    }

    /// The entry for `bytes`, or `nil`.
    @inline(__always)
    func lookup(_ bytes: UnsafeBufferPointer<UInt8>) -> TermEntry? {
        guard bytes.count > 0, bytes.count <= self.maxKeyBytes else { return nil }
        let hash = Self.hash(bytes)
        return self.slots.withUnsafeBufferPointer { slots in
            self.keys.withUnsafeBufferPointer { keys -> TermEntry? in
                var index = Int(hash) & self.mask
                while true {
                    let slot = slots[index]
                    if slot.entry < 0 { return nil }
                    if slot.hash == hash, Int(slot.keyLength) == bytes.count,
                        memoryEqual(keys.baseAddress! + Int(slot.keyOffset), bytes.baseAddress!, bytes.count)
                    {
                        return self.entries[Int(slot.entry)]
                    }
                    index = (index + 1) & self.mask
                }
            }
        }
    }

    /// Inserts or merges: `update` receives the existing entry (or ``TermEntry/empty``).
    mutating func upsert(_ key: [UInt8], _ update: (inout TermEntry) -> Void) {
        guard !key.isEmpty else { return }
        if self.entries.count * 2 >= self.slots.count { self.grow() }
        let hash = key.withUnsafeBufferPointer { Self.hash($0) }
        var index = Int(hash) & self.mask
        while true {
            let slot = self.slots[index]
            if slot.entry < 0 { break }
            if slot.hash == hash, Int(slot.keyLength) == key.count,
                self.keys[Int(slot.keyOffset)..<Int(slot.keyOffset) + key.count].elementsEqual(key)
            {
                update(&self.entries[Int(slot.entry)])
                return
            }
            index = (index + 1) & self.mask
        }
        var entry = TermEntry.empty
        update(&entry)
        self.slots[index] = Slot(
            hash: hash,
            keyLength: UInt32(key.count),
            keyOffset: UInt32(self.keys.count),
            entry: Int32(self.entries.count)
        )
        self.keys.append(contentsOf: key)
        self.entries.append(entry)
        self.maxKeyBytes = max(self.maxKeyBytes, key.count)
    }

    private mutating func grow() {
        let old = self.slots
        self.slots = Array(repeating: Slot(hash: 0, keyLength: 0, keyOffset: 0, entry: -1), count: old.count * 2)
        self.mask = self.slots.count - 1
        for slot in old where slot.entry >= 0 {
            var index = Int(slot.hash) & self.mask
            while self.slots[index].entry >= 0 { index = (index + 1) & self.mask }
            self.slots[index] = slot
        }
    }

    /// Bytes held by the table (keys, slots and entries), for the resident-size report.
    var footprintBytes: Int {
        self.keys.capacity + self.slots.capacity * MemoryLayout<Slot>.stride + self.entries.capacity
            * MemoryLayout<TermEntry>.stride
    }
}

@inline(__always)
func memoryEqual(_ lhs: UnsafePointer<UInt8>, _ rhs: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    var index = 0
    while index < count {
        if lhs[index] != rhs[index] { return false }
        index += 1
    }
    return true
}
