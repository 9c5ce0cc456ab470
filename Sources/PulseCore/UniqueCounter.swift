#if canImport(Glibc)
import Glibc
#endif

/// Counts distinct values (user ids) exactly up to a bound, then with a HyperLogLog sketch.
///
/// The sketch has 2¹² registers (4 KiB): standard error 1.04/√4096 ≈ 1.6%. Counters merge (brand-level
/// partials from several partitions), exactly while both sides are exact and small enough, otherwise by
/// taking register maxima. Values are 64-bit hashes; the caller hashes.
///
/// While exact, the values sit in an *ordered* linear-probing table (Amble and Knuth's ordered hash tables):
/// a value's home slot is the top bits of its ``mix(_:)``, and every run of occupied slots is kept in ascending
/// `mix` order, so the whole table reads in that order, slot by slot. An insert goes straight to the value's
/// home and scans its short run: one probe into the table, where the sorted array this replaces took a cache
/// miss at most steps of a binary search over kilobytes, and then moved half of them (8.5 % of a live
/// daemon's CPU, measured). The table is written, compared and merged in a canonical order without a sort. Home slots come from the mixed value because the callers' FNV hashes
/// of similar ids share their top bits. 0 marks an empty slot; the value 0 is a flag of its own. Runs may
/// spill past the last home slot into a tail of spare slots; a run that would spill past those grows the
/// table. With one home slot (up to ``sortedLimit`` values) the table is a sorted array scanned in order.
public struct UniqueCounter: Sendable {
    /// Register-index bits of the sketch.
    public static let precision = 12
    private static let registerCount = 1 << precision
    /// Most values kept with a single home slot, as a sorted array.
    static let sortedLimit = 16

    /// Distinct values remembered exactly before switching to the sketch (`metrics.unique_exact_limit`).
    public let exactLimit: Int
    /// The exact values other than 0, by ascending ``mix(_:)``; 0 marks an empty slot.
    private var slots: [UInt64] = []
    /// The table has `1 << homeBits` home slots; the rest of `slots` is spare tail.
    private var homeBits: UInt8 = 0
    private var hasZero = false
    /// Nonzero values in `slots`.
    private var stored = 0
    /// The sketch's registers, once it has switched (empty before).
    private var registers: [UInt8] = []

    public init(exactLimit: Int = 1000) {
        self.exactLimit = exactLimit
    }

    /// Whether the counter has switched to the sketch.
    public var isApproximate: Bool { !self.registers.isEmpty }

    private var exactCount: Int { self.stored + (self.hasZero ? 1 : 0) }

    public mutating func insert(_ hash: UInt64) {
        guard self.registers.isEmpty else {
            self.add(toSketch: hash)
            return
        }
        if hash == 0 {
            guard !self.hasZero else { return }
            self.hasZero = true
        } else {
            guard self.place(hash) else { return }
        }
        if self.exactCount > self.exactLimit { self.switchToSketch() }
    }

    /// Records a nonzero value; false when it was there already.
    private mutating func place(_ value: UInt64) -> Bool {
        if self.stored >= self.maximumLoad { self.grow(toHold: self.stored + 1) }
        let key = Self.mix(value)
        while true {
            let home = self.homeBits == 0 ? 0 : Int(truncatingIfNeeded: key >> UInt64(64 - self.homeBits))
            let placed: Bool? = self.slots.withUnsafeMutableBufferPointer { slots in
                // Past the values that come before it in its run.
                var position = home
                while position < slots.count {
                    let present = slots[position]
                    if present == 0 {
                        slots[position] = value
                        return true
                    }
                    let presentKey = Self.mix(present)
                    if presentKey == key { return false }  // `mix` is a bijection: the same value
                    if presentKey > key { break }
                    position += 1
                }
                // Into the run at `position`: the rest of it moves one slot on, into the first empty slot.
                var empty = position
                while empty < slots.count && slots[empty] != 0 { empty += 1 }
                guard empty < slots.count else { return nil }  // the run would spill past the tail
                var slot = empty
                while slot > position {
                    slots[slot] = slots[slot - 1]
                    slot -= 1
                }
                slots[position] = value
                return true
            }
            guard let placed else {
                self.grow(toHold: self.stored + 1, spilled: true)
                continue
            }
            if placed { self.stored += 1 }
            return placed
        }
    }

    /// Values the table takes before it grows: all of its slots while it is a sorted array, else 3/4 of its
    /// home slots.
    private var maximumLoad: Int {
        self.homeBits == 0 ? self.slots.count : (3 << Int(self.homeBits)) / 4
    }

    /// Spare slots after the last home slot, for runs that spill past it.
    private static func tail(homeBits: Int) -> Int { max(8, (1 << homeBits) / 8) }

    /// Rebuilds the table for at least `count` values (and larger than now when a run `spilled`).
    private mutating func grow(toHold count: Int, spilled: Bool = false) {
        var bits = Int(self.homeBits)
        var size = self.slots.count
        if bits == 0 && count <= Self.sortedLimit {
            // A sorted array: 4, 8 or 16 slots.
            size = max(4, size)
            while size < count { size *= 2 }
        } else {
            bits = max(bits + (spilled ? 1 : 0), 5)
            while (3 << bits) / 4 < count { bits += 1 }
            size = (1 << bits) + Self.tail(homeBits: bits)
        }
        // Laid out again in order: each value at its home, or right after the one before it.
        while true {
            var slots = [UInt64](repeating: 0, count: size)
            var next = 0
            var fits = true
            for value in self.slots where value != 0 {
                let home = bits == 0 ? 0 : Int(truncatingIfNeeded: Self.mix(value) >> UInt64(64 - bits))
                let position = max(home, next)
                guard position < size else {
                    fits = false
                    break
                }
                slots[position] = value
                next = position + 1
            }
            if fits {
                self.slots = slots
                self.homeBits = UInt8(bits)
                return
            }
            bits = max(bits + 1, 5)
            size = (1 << bits) + Self.tail(homeBits: bits)
        }
    }

    /// Calls `body` with each exact value in the canonical order: 0 first, then by ascending ``mix(_:)``.
    private func forEachExact(_ body: (UInt64) -> Void) {
        if self.hasZero { body(0) }
        for value in self.slots where value != 0 { body(value) }
    }

    public mutating func merge(_ other: UniqueCounter) {
        if other.registers.isEmpty {
            guard self.registers.isEmpty else {
                other.forEachExact { self.add(toSketch: $0) }
                return
            }
            guard other.exactCount > 0 else { return }
            // One rebuild up front rather than one per doubling; past the bound the sketch takes over anyway.
            let union = min(self.exactCount + other.exactCount, self.exactLimit)
            if union > self.maximumLoad { self.grow(toHold: union) }
            other.forEachExact { self.insert($0) }
            return
        }
        if self.registers.isEmpty { self.switchToSketch() }
        for index in 0..<Self.registerCount where other.registers[index] > self.registers[index] {
            self.registers[index] = other.registers[index]
        }
    }

    /// The count: exact below the bound, else the HyperLogLog estimate (with the small-range correction).
    public var count: Int {
        if self.registers.isEmpty { return self.exactCount }
        let m = Double(Self.registerCount)
        var sum = 0.0
        var zeros = 0
        for register in self.registers {
            sum += 1.0 / Double(UInt64(1) << UInt64(register))
            if register == 0 { zeros += 1 }
        }
        let alpha = 0.7213 / (1 + 1.079 / m)
        let estimate = alpha * m * m / sum
        if estimate <= 2.5 * m && zeros > 0 {
            return Int((m * log(m / Double(zeros))).rounded())  // linear counting
        }
        return Int(estimate.rounded())
    }

    private mutating func switchToSketch() {
        var registers = [UInt8](repeating: 0, count: Self.registerCount)
        self.forEachExact { Self.add(toSketch: $0, registers: &registers) }
        self.registers = registers
        self.slots = []
        self.homeBits = 0
        self.hasZero = false
        self.stored = 0
    }

    private mutating func add(toSketch hash: UInt64) {
        Self.add(toSketch: hash, registers: &self.registers)
    }

    private static func add(toSketch hash: UInt64, registers: inout [UInt8]) {
        // Mix first: FNV-style input hashes have weak low bits.
        let mixed = Self.mix(hash)
        let index = Int(mixed >> UInt64(64 - Self.precision))
        let rest = mixed << UInt64(Self.precision)
        let rank = UInt8(min(rest.leadingZeroBitCount, 64 - Self.precision) + 1)
        if rank > registers[index] { registers[index] = rank }
    }

    /// SplitMix64's finaliser: a bijective 64-bit mix.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Approximate heap bytes held (for the state-size figures).
    public var stateBytes: Int {
        self.registers.isEmpty ? self.slots.capacity * 8 : self.registers.count
    }
}

/// Equal counters hold the same values (or the same sketch) under the same bound, however they were built:
/// the tables' sizes depend on how they grew, their order does not.
extension UniqueCounter: Equatable {
    public static func == (lhs: UniqueCounter, rhs: UniqueCounter) -> Bool {
        guard lhs.exactLimit == rhs.exactLimit, lhs.registers == rhs.registers else { return false }
        guard lhs.registers.isEmpty else { return true }
        return lhs.hasZero == rhs.hasZero && lhs.stored == rhs.stored
            && lhs.slots.lazy.filter { $0 != 0 }.elementsEqual(rhs.slots.lazy.filter { $0 != 0 })
    }
}

/// FNV-1a 64-bit hash of a string's UTF-8 bytes.
public func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }
    return hash
}

extension UniqueCounter {
    /// Appends the counter in the binary format (``BinaryWriter``): the exact hashes, or the sketch's
    /// registers. The hashes come in the table's canonical order (0 first, then by ascending ``mix(_:)``), so
    /// that equal counters give equal bytes whatever order their values came in. Until 2026-11-28 they were
    /// written ascending; readers take them in any order, as both before and after did.
    public func write(to writer: inout BinaryWriter) {
        writer.varint(UInt64(self.exactLimit))
        if self.registers.isEmpty {
            writer.byte(0)
            writer.varint(UInt64(self.exactCount))
            if self.hasZero { writer.fixed64(0) }
            writer.fixed64s(skippingZeros: self.slots)
        } else {
            writer.byte(1)
            writer.append(contentsOf: self.registers)
        }
    }

    public init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        let limit = try reader.varint()
        guard limit <= UInt64(Int.max) else {
            throw BinaryDecodingError(offset: reader.offset, reason: "exact limit out of range")
        }
        self.init(exactLimit: Int(limit))
        switch try reader.byte() {
        case 0:
            let count = try reader.count()
            // Sized once for what it will hold (in any order: values written before 2026-11-28 ascend).
            let expected = min(count, self.exactLimit)
            if expected > 0 { self.grow(toHold: expected) }
            for _ in 0..<count { self.insert(try reader.fixed64()) }
        case 1:
            var registers = [UInt8](repeating: 0, count: Self.registerCount)
            for index in 0..<Self.registerCount { registers[index] = try reader.byte() }
            self.registers = registers
        case let other:
            throw BinaryDecodingError(offset: reader.offset, reason: "unique counter kind \(other)")
        }
    }
}

/// The JSON shape of a `Set`-based counter, which instances of earlier versions still send and read:
/// `exact` holds the values (any order), and is left out once the counter is a sketch, whose `registers` are
/// then set.
extension UniqueCounter: Codable {
    private enum CodingKeys: String, CodingKey {
        case exactLimit, exact, registers
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(exactLimit: try container.decode(Int.self, forKey: .exactLimit))
        let registers = try container.decodeIfPresent([UInt8].self, forKey: .registers) ?? []
        if let exact = try container.decodeIfPresent([UInt64].self, forKey: .exact) {
            for value in exact { self.insert(value) }
        } else {
            guard registers.count == Self.registerCount else {
                throw DecodingError.dataCorruptedError(
                    forKey: .registers,
                    in: container,
                    debugDescription: "a sketch needs \(Self.registerCount) registers, not \(registers.count)"
                )
            }
            self.registers = registers
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.exactLimit, forKey: .exactLimit)
        // A sketch has no `exact` key at all, as before; the values ascending, as before.
        if self.registers.isEmpty {
            var exact: [UInt64] = []
            exact.reserveCapacity(self.exactCount)
            self.forEachExact { exact.append($0) }
            try container.encode(exact.sorted(), forKey: .exact)
        }
        try container.encode(self.registers, forKey: .registers)
    }
}
