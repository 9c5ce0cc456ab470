/// A set of 64-bit hashes in one flat table: open addressing with linear probing, 8 bytes per slot.
///
/// The deduplicator remembers every event id of its horizon (at 50 000 events/s and the default 10 minutes,
/// 30 M ids). As a `[UInt64: Int64]` each cost a 16-byte entry in a table at most 75 % full, and every lookup
/// ran SipHash over a value that is already a hash. Here a slot is the hash itself: the values are spread by
/// a multiplicative hash (their high bits pick the slot), and deletion shifts the following entries back
/// (Knuth's algorithm R for linear probing), so there are no tombstones and lookups never slow down as ids
/// come and go.
///
/// `0` marks an empty slot; the value `0` itself is held by a flag beside the table.
struct HashSet64: Sendable {
    /// Power of two (or empty before the first insertion).
    private var slots: [UInt64] = []
    private var hasZero = false
    private(set) var count = 0
    /// `64 - log2(slots.count)`: the shift that takes a mixed value's high bits as its slot.
    private var shift: UInt64 = 64

    init(minimumCapacity: Int = 0) {
        if minimumCapacity > 0 { self.resize(to: Self.capacity(for: minimumCapacity)) }
    }

    /// Slots allocated. The table grows as values come and does not shrink: the deduplicator's stays the size
    /// of its peak, at most what ``Deduplicator/Configuration/maxEntries`` ids take (16 MiB for a million).
    var capacity: Int { self.slots.count }

    func contains(_ value: UInt64) -> Bool {
        if value == 0 { return self.hasZero }
        guard !self.slots.isEmpty else { return false }
        let shift = self.shift
        return self.slots.withUnsafeBufferPointer { table in
            let mask = table.count - 1
            var index = Self.home(value, shift: shift)
            while true {
                let slot = table[index]
                if slot == value { return true }
                if slot == 0 { return false }
                index = (index + 1) & mask
            }
        }
    }

    /// Adds `value`; returns whether it was absent (as `Set.insert(_:).inserted`).
    @discardableResult
    mutating func insert(_ value: UInt64) -> Bool {
        if value == 0 {
            guard !self.hasZero else { return false }
            self.hasZero = true
            self.count += 1
            return true
        }
        // At most 3/4 full, counting the new value (the zero flag takes no slot, but is counted: harmless).
        if (self.count + 1) * 4 > self.slots.count * 3 { self.resize(to: max(16, self.slots.count * 2)) }
        let shift = self.shift
        let inserted = self.slots.withUnsafeMutableBufferPointer { table in
            let mask = table.count - 1
            var index = Self.home(value, shift: shift)
            while true {
                let slot = table[index]
                if slot == value { return false }
                if slot == 0 {
                    table[index] = value
                    return true
                }
                index = (index + 1) & mask
            }
        }
        if inserted { self.count += 1 }
        return inserted
    }

    /// Removes `value`; returns whether it was there.
    @discardableResult
    mutating func remove(_ value: UInt64) -> Bool {
        if value == 0 {
            guard self.hasZero else { return false }
            self.hasZero = false
            self.count -= 1
            return true
        }
        guard !self.slots.isEmpty else { return false }
        let shift = self.shift
        let removed = self.slots.withUnsafeMutableBufferPointer { table in
            let mask = table.count - 1
            var hole = Self.home(value, shift: shift)
            while table[hole] != value {
                if table[hole] == 0 { return false }
                hole = (hole + 1) & mask
            }
            // Shift back every following entry of the run that may not stay behind the hole: an entry whose
            // home slot is not cyclically in (hole, index] would no longer be found past the empty hole.
            var index = hole
            while true {
                index = (index + 1) & mask
                let slot = table[index]
                if slot == 0 { break }
                let home = Self.home(slot, shift: shift)
                let stays = hole <= index ? (hole < home && home <= index) : (hole < home || home <= index)
                if stays { continue }
                table[hole] = slot
                hole = index
            }
            table[hole] = 0
            return true
        }
        if removed { self.count -= 1 }
        return removed
    }

    /// Every value, in no particular order.
    func forEach(_ body: (UInt64) throws -> Void) rethrows {
        if self.hasZero { try body(0) }
        for slot in self.slots where slot != 0 { try body(slot) }
    }

    /// Fibonacci hashing: the high bits of the value times 2⁶⁴/φ. Ids are FNV-1a hashes, whose low bits are
    /// weak, so the product's high bits are taken.
    private static func home(_ value: UInt64, shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (value &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The smallest power of two that holds `count` values at most 3/4 full.
    private static func capacity(for count: Int) -> Int {
        var capacity = 16
        while count * 4 > capacity * 3 { capacity *= 2 }
        return capacity
    }

    private mutating func resize(to capacity: Int) {
        let old = self.slots
        self.slots = [UInt64](repeating: 0, count: capacity)
        self.shift = UInt64(64 - capacity.trailingZeroBitCount)
        let shift = self.shift
        self.slots.withUnsafeMutableBufferPointer { table in
            let mask = table.count - 1
            for value in old where value != 0 {
                var index = Self.home(value, shift: shift)
                while table[index] != 0 { index = (index + 1) & mask }
                table[index] = value
            }
        }
    }
}
