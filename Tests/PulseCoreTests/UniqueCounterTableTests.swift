import Testing

@testable import PulseCore

@Suite("Unique users: the ordered table of exact values")
struct UniqueCounterTableTests {
    typealias Generator = HashSet64Tests.Generator

    /// The inverse of ``UniqueCounter/mix(_:)``, to build values whose mixes, and so home slots, are chosen.
    static func unmix(_ mixed: UInt64) -> UInt64 {
        var value = self.unshift(mixed, 31)
        value = value &* self.inverse(0x94D0_49BB_1331_11EB)
        value = self.unshift(value, 27)
        value = value &* self.inverse(0xBF58_476D_1CE4_E5B9)
        value = self.unshift(value, 30)
        return value &- 0x9E37_79B9_7F4A_7C15
    }

    /// Undoes `value ^ (value >> shift)`.
    static func unshift(_ value: UInt64, _ shift: UInt64) -> UInt64 {
        var result = value
        for _ in 0...(64 / shift) { result = value ^ (result >> shift) }
        return result
    }

    /// The inverse of an odd number modulo 2⁶⁴ (Newton's iteration doubles the correct bits each step).
    static func inverse(_ odd: UInt64) -> UInt64 {
        var result = odd
        for _ in 0..<6 { result = result &* (2 &- odd &* result) }
        return result
    }

    /// `count` values whose mixes begin with `prefix` in their top 12 bits: they share their home slot in every
    /// table of up to 4 096 home slots. The prefix of all ones puts them at the last home slot, so their run
    /// spills past it.
    static func crowded(prefix: UInt64, count: Int, random: inout Generator) -> [UInt64] {
        (0..<count).map { _ in self.unmix(prefix << 52 | random.next() >> 12) }
    }

    static func bytes(_ counter: UniqueCounter) -> [UInt8] {
        var writer = BinaryWriter()
        counter.write(to: &writer)
        return writer.bytes
    }

    @Test("The test's inverse of the mix is one")
    func unmixInvertsMix() {
        var random = Generator(state: 7)
        for _ in 0..<1000 {
            let value = random.next()
            #expect(UniqueCounter.mix(Self.unmix(value)) == value)
        }
    }

    @Test(
        "Crowded home slots and runs past the last home slot: counts agree with a set at every step, and equal sets give equal counters and bytes",
        arguments: [1, 2, 3] as [UInt64]
    )
    func crowdedAgreesWithASet(seed: UInt64) throws {
        var random = Generator(state: seed)
        var pool = Self.crowded(prefix: 0, count: 300, random: &random)
        pool += Self.crowded(prefix: 0xFFF, count: 300, random: &random)
        pool += Self.crowded(prefix: 0x800, count: 300, random: &random)
        pool += (0..<300).map { _ in random.next() }
        pool += [0, 1, UInt64.max]
        var counter = UniqueCounter(exactLimit: 5000)
        var model = Set<UInt64>()
        for step in 0..<4000 {
            // 4 000 draws from 1 203 values: new values and repeats interleaved, repeats most of the time by the end.
            let value = pool[Int(random.next() % UInt64(pool.count))]
            counter.insert(value)
            model.insert(value)
            #expect(counter.count == model.count, "after \(step) inserts")
        }
        #expect(!counter.isApproximate)

        // The same set in another order, and built by merging two halves: equal counters, equal bytes.
        var shuffled = UniqueCounter(exactLimit: 5000)
        for value in model.shuffled(using: &random) { shuffled.insert(value) }
        var left = UniqueCounter(exactLimit: 5000)
        var right = UniqueCounter(exactLimit: 5000)
        for (index, value) in model.enumerated() {
            if index % 3 == 0 { left.insert(value) } else { right.insert(value) }
        }
        left.merge(right)
        #expect(shuffled == counter && left == counter)
        #expect(Self.bytes(shuffled) == Self.bytes(counter) && Self.bytes(left) == Self.bytes(counter))

        // Written and read back: the same values, and one more changes the counter.
        var reader = BinaryReader(Self.bytes(counter))
        let read = try UniqueCounter(reading: &reader)
        #expect(read == counter && read.count == model.count)
        var another = counter
        another.insert(pool.first { !model.contains($0) } ?? 42)
        #expect(another != counter || model.count == pool.count)
    }

    @Test("A table is written as its nonzero values, after what the writer holds already")
    func writesNonzeroSlots() {
        for slots: [UInt64] in [[], [0, 0], [0, 5, 0, 0, UInt64.max, 7, 0], [3]] {
            var table = BinaryWriter()
            table.byte(9)
            table.fixed64s(skippingZeros: slots)
            var oneByOne = BinaryWriter()
            oneByOne.byte(9)
            for value in slots where value != 0 { oneByOne.fixed64(value) }
            #expect(table.bytes == oneByOne.bytes, "\(slots)")
        }
    }

    @Test("Counters written ascending, as before 2026-11-28, read back as the same counters")
    func readsAscendingValues() throws {
        var random = Generator(state: 11)
        for size in [0, 1, 5, 16, 17, 40, 700] {
            let values = Set((0..<size).map { _ in random.next() % 100_000 })
            var writer = BinaryWriter()
            writer.varint(1000)
            writer.byte(0)
            writer.varint(UInt64(values.count))
            writer.fixed64s(values.sorted())
            var reader = BinaryReader(writer.bytes)
            let read = try UniqueCounter(reading: &reader)
            var expected = UniqueCounter(exactLimit: 1000)
            for value in values { expected.insert(value) }
            #expect(read == expected && read.count == values.count, "\(size) values")
            #expect(Self.bytes(read) == Self.bytes(expected))
        }
    }
}
