#if canImport(Glibc)
import Glibc
#endif

/// Counts distinct values (user ids) exactly up to a bound, then with a HyperLogLog sketch.
///
/// The sketch has 2¹² registers (4 KiB): standard error 1.04/√4096 ≈ 1.6%. Counters merge (brand-level
/// partials from several partitions), exactly while both sides are exact and small enough, otherwise by
/// taking register maxima. Values are 64-bit hashes; the caller hashes.
public struct UniqueCounter: Sendable, Equatable {
    /// Register-index bits of the sketch.
    public static let precision = 12
    private static let registerCount = 1 << precision

    /// Distinct values remembered exactly before switching to the sketch (`metrics.unique_exact_limit`).
    public let exactLimit: Int
    /// The distinct values, ascending, while exact. A sorted array rather than a `Set`: most counters hold a
    /// handful of users (one subject in one window), where a binary search and a short move beat hashing
    /// each value again and a set's several reallocations while it grows; it is written and merged in order
    /// with no sort, and holds 8 bytes per value.
    private var exact: [UInt64] = []
    /// The sketch's registers, once it has switched (empty before).
    private var registers: [UInt8] = []

    public init(exactLimit: Int = 1000) {
        self.exactLimit = exactLimit
    }

    /// Whether the counter has switched to the sketch.
    public var isApproximate: Bool { !self.registers.isEmpty }

    public mutating func insert(_ hash: UInt64) {
        guard self.registers.isEmpty else {
            self.add(toSketch: hash)
            return
        }
        let index = Self.lowerBound(of: hash, in: self.exact)
        if index < self.exact.count && self.exact[index] == hash { return }
        if self.exact.capacity == 0 { self.exact.reserveCapacity(4) }
        self.exact.insert(hash, at: index)
        if self.exact.count > self.exactLimit { self.switchToSketch() }
    }

    /// The first position in `values` (ascending) whose value is not below `hash`.
    private static func lowerBound(of hash: UInt64, in values: [UInt64]) -> Int {
        values.withUnsafeBufferPointer { buffer in
            var low = 0
            var high = buffer.count
            while low < high {
                let middle = (low + high) / 2
                if buffer[middle] < hash { low = middle + 1 } else { high = middle }
            }
            return low
        }
    }

    public mutating func merge(_ other: UniqueCounter) {
        if other.registers.isEmpty {
            guard self.registers.isEmpty else {
                for hash in other.exact { self.add(toSketch: hash) }
                return
            }
            guard !other.exact.isEmpty else { return }
            self.exact = Self.union(self.exact, other.exact)
            if self.exact.count > self.exactLimit { self.switchToSketch() }
            return
        }
        if self.registers.isEmpty { self.switchToSketch() }
        for index in 0..<Self.registerCount where other.registers[index] > self.registers[index] {
            self.registers[index] = other.registers[index]
        }
    }

    /// The ascending union of two ascending arrays of distinct values.
    private static func union(_ left: [UInt64], _ right: [UInt64]) -> [UInt64] {
        if left.isEmpty { return right }
        var merged: [UInt64] = []
        merged.reserveCapacity(left.count + right.count)
        var i = 0
        var j = 0
        while i < left.count && j < right.count {
            let a = left[i]
            let b = right[j]
            if a < b {
                merged.append(a)
                i += 1
            } else if b < a {
                merged.append(b)
                j += 1
            } else {
                merged.append(a)
                i += 1
                j += 1
            }
        }
        merged.append(contentsOf: left[i...])
        merged.append(contentsOf: right[j...])
        return merged
    }

    /// Sorts `values` and drops repeats (values read from JSON written by a `Set`, in any order).
    private static func ascendingDistinct(_ values: [UInt64]) -> [UInt64] {
        guard zip(values, values.dropFirst()).contains(where: { $0 >= $1 }) else { return values }
        var distinct: [UInt64] = []
        distinct.reserveCapacity(values.count)
        for value in values.sorted() where value != distinct.last { distinct.append(value) }
        return distinct
    }

    /// The count: exact below the bound, else the HyperLogLog estimate (with the small-range correction).
    public var count: Int {
        if self.registers.isEmpty { return self.exact.count }
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
        let values = self.exact
        self.exact = []
        self.registers = [UInt8](repeating: 0, count: Self.registerCount)
        for hash in values { self.add(toSketch: hash) }
    }

    private mutating func add(toSketch hash: UInt64) {
        // Mix first: FNV-style input hashes have weak low bits.
        let mixed = Self.mix(hash)
        let index = Int(mixed >> UInt64(64 - Self.precision))
        let rest = mixed << UInt64(Self.precision)
        let rank = UInt8(min(rest.leadingZeroBitCount, 64 - Self.precision) + 1)
        if rank > self.registers[index] { self.registers[index] = rank }
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
        self.registers.isEmpty ? self.exact.capacity * 8 : self.registers.count
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
    /// Appends the counter in the binary format (``BinaryWriter``): the exact hashes (ascending, so that
    /// equal counters give equal bytes whatever the set's iteration order), or the sketch's registers.
    public func write(to writer: inout BinaryWriter) {
        writer.varint(UInt64(self.exactLimit))
        if self.registers.isEmpty {
            writer.byte(0)
            writer.varint(UInt64(self.exact.count))
            writer.fixed64s(self.exact)  // one copy, not a call per value (every open aggregate, each commit)
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
            var exact: [UInt64] = []
            exact.reserveCapacity(count)
            for _ in 0..<count { exact.append(try reader.fixed64()) }
            // Written ascending; checked all the same, as every other field of a checkpoint is.
            self.exact = Self.ascendingDistinct(exact)
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
            self.exact = Self.ascendingDistinct(exact)
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
        // A sketch has no `exact` key at all, as before.
        if self.registers.isEmpty { try container.encode(self.exact, forKey: .exact) }
        try container.encode(self.registers, forKey: .registers)
    }
}
