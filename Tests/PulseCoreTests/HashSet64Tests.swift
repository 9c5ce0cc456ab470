import Testing

@testable import PulseCore

@Suite("The deduplicator's set of id hashes")
struct HashSet64Tests {
    /// A reproducible generator (SplitMix64), so that a failure can be replayed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            return UniqueCounter.mix(self.state)
        }
    }

    /// Applies random insertions and removals to the set and to a `Set<UInt64>`, and compares them after every
    /// operation. Values come from a small pool, so that most operations hit present values and runs collide.
    func compareWithSet(pool: [UInt64], operations: Int, seed: UInt64) {
        var random = Generator(state: seed)
        var set = HashSet64()
        var model = Set<UInt64>()
        for step in 0..<operations {
            let value = pool[Int(random.next() % UInt64(pool.count))]
            if random.next() % 3 == 0 {
                let removed = set.remove(value)
                #expect(removed == (model.remove(value) != nil), "remove \(value) at step \(step)")
            } else {
                let inserted = set.insert(value)
                #expect(inserted == model.insert(value).inserted, "insert \(value) at step \(step)")
            }
            #expect(set.count == model.count)
            // Every value of the pool, present or not: a removal that broke a probe run shows up as a
            // present value no longer found.
            if step % 97 == 0 || operations < 5_000 {
                for candidate in pool { #expect(set.contains(candidate) == model.contains(candidate)) }
            }
        }
        var listed: [UInt64] = []
        set.forEach { listed.append($0) }
        #expect(listed.sorted() == model.sorted())
    }

    @Test("Insert, remove and contains agree with Set<UInt64> over random operations, zero included")
    func agreesWithSet() {
        var random = Generator(state: 42)
        let pool = [0] + (0..<2_000).map { _ in random.next() }
        self.compareWithSet(pool: pool, operations: 100_000, seed: 7)
    }

    @Test("Values that share their home slot, and runs that wrap past the end of the table, survive removals")
    func collidingRunsSurviveRemovals() {
        // Values whose multiplicative hash has the same high bits start in the same slot at every capacity;
        // values whose home is the last slots make runs wrap around to the start of the table.
        let inverse: UInt64 = 0xF1DE_83E1_9937_733D  // 0x9E3779B97F4A7C15 × this ≡ 1 (mod 2⁶⁴)
        #expect(0x9E37_79B9_7F4A_7C15 &* inverse == 1)
        var pool: [UInt64] = []
        for high in [UInt64(0), 1, 0x7F, 0xFF] {
            for low in 0..<UInt64(12) {
                // The product with the set's multiplier is `high` in its top byte (the home slot, at any
                // capacity up to 2⁵⁶: 0xFF is the last slot), `low` in its bottom bits.
                let product = (high << 56) | low
                pool.append(product &* inverse)
            }
        }
        #expect(Set(pool).count == pool.count)
        self.compareWithSet(pool: pool, operations: 20_000, seed: 11)
    }

    @Test("Grows past its load limit and keeps every value; a minimum capacity is honoured")
    func growsAndReserves() {
        var set = HashSet64()
        var allInserted = true
        for value in 1...100_000 as ClosedRange<UInt64> {
            allInserted = set.insert(value &* 0x1234_5678_9ABC_DEF1) && allInserted
        }
        #expect(allInserted)
        #expect(set.count == 100_000)
        #expect(set.capacity * 3 >= 100_000 * 4)
        for value in 1...100_000 as ClosedRange<UInt64> { #expect(set.contains(value &* 0x1234_5678_9ABC_DEF1)) }
        #expect(!set.contains(0))
        let again = set.insert(0x1234_5678_9ABC_DEF1)
        #expect(!again)
        let reserved = HashSet64(minimumCapacity: 1_000)
        #expect(reserved.capacity >= 1_334)
        #expect(reserved.count == 0)
    }
}
