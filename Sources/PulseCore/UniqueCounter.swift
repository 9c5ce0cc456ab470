#if canImport(Glibc)
import Glibc
#endif

/// Counts distinct values (user ids) exactly up to a bound, then with a HyperLogLog sketch.
///
/// The sketch has 2¹² registers (4 KiB): standard error 1.04/√4096 ≈ 1.6%. Counters merge (brand-level
/// partials from several partitions), exactly while both sides are exact and small enough, otherwise by
/// taking register maxima. Values are 64-bit hashes; the caller hashes.
public struct UniqueCounter: Sendable, Equatable, Codable {
    /// Register-index bits of the sketch.
    public static let precision = 12
    private static let registerCount = 1 << precision

    /// Distinct values remembered exactly before switching to the sketch (`metrics.unique_exact_limit`).
    public let exactLimit: Int
    private var exact: Set<UInt64>? = []
    private var registers: [UInt8] = []

    public init(exactLimit: Int = 1000) {
        self.exactLimit = exactLimit
    }

    /// Whether the counter has switched to the sketch.
    public var isApproximate: Bool { self.exact == nil }

    public mutating func insert(_ hash: UInt64) {
        if self.exact != nil {
            self.exact!.insert(hash)
            if self.exact!.count > self.exactLimit { self.switchToSketch() }
        } else {
            self.add(toSketch: hash)
        }
    }

    public mutating func merge(_ other: UniqueCounter) {
        if let theirs = other.exact {
            for hash in theirs { self.insert(hash) }
            return
        }
        if self.exact != nil { self.switchToSketch() }
        for index in 0..<Self.registerCount where other.registers[index] > self.registers[index] {
            self.registers[index] = other.registers[index]
        }
    }

    /// The count: exact below the bound, else the HyperLogLog estimate (with the small-range correction).
    public var count: Int {
        if let exact = self.exact { return exact.count }
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
        let values = self.exact ?? []
        self.exact = nil
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
        if let exact = self.exact { return exact.capacity * 9 }
        return self.registers.count
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
        if let exact = self.exact {
            writer.byte(0)
            writer.varint(UInt64(exact.count))
            for hash in exact.sorted() { writer.fixed64(hash) }
        } else {
            writer.byte(1)
            for register in self.registers { writer.byte(register) }
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
            var exact = Set<UInt64>(minimumCapacity: count)
            for _ in 0..<count { exact.insert(try reader.fixed64()) }
            self.exact = exact
        case 1:
            var registers = [UInt8](repeating: 0, count: Self.registerCount)
            for index in 0..<Self.registerCount { registers[index] = try reader.byte() }
            self.exact = nil
            self.registers = registers
        case let other:
            throw BinaryDecodingError(offset: reader.offset, reason: "unique counter kind \(other)")
        }
    }
}
