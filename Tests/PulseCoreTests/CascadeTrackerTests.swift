import Testing

@testable import PulseCore

@Suite("Cascade tracker")
struct CascadeTrackerTests {
    /// The tracker as first written: a ring of (id, depth) with string ids, the oldest overwritten first.
    struct Reference {
        let capacity: Int
        var ring: [(id: String, depth: Int)] = []
        var head = 0

        mutating func record(_ id: String, parent: String?) -> Int {
            let depth = parent.flatMap { parent in self.ring.first { $0.id == parent } }.map { $0.depth + 1 } ?? 1
            if let slot = self.ring.firstIndex(where: { $0.id == id }) {
                self.ring[slot].depth = depth
            } else if self.ring.count < self.capacity {
                self.ring.append((id, depth))
            } else {
                self.ring[self.head] = (id, depth)
                self.head = (self.head + 1) % self.capacity
            }
            return depth
        }
    }

    static func roundTrip(_ tracker: CascadeTracker, segmenting: Bool) throws -> CascadeTracker {
        var writer = BinaryWriter()
        writer.segmenting = segmenting
        tracker.write(to: &writer)
        var reader = BinaryReader(StateSegment.splice(writer.segments, into: writer.bytes))
        let restored = try CascadeTracker(reading: &reader)
        #expect(reader.isAtEnd)
        return restored
    }

    @Test(
        "Depths agree with a plain ring for any capacity, through wraps, re-shares and checkpoints",
        arguments: [1, 10, 64, 100, 128, 300]
    )
    func agreesWithReference(capacity: Int) throws {
        var generator = SplitMix64(seed: UInt64(capacity))
        var tracker = CascadeTracker(capacity: capacity)
        var reference = Reference(capacity: capacity)
        for step in 0..<3_000 {
            // Ids from a pool a little larger than the ring, so that re-shares of remembered ids and of
            // forgotten ones both happen; parents from the same pool, or none.
            let pool = UInt64(capacity + capacity / 2 + 2)
            let id = "s\(generator.next() % pool)"
            let parent = generator.next() % 4 == 0 ? nil : "s\(generator.next() % pool)"
            let expected = reference.record(id, parent: parent)
            let depth = tracker.record(shareID: id, parentID: parent)
            #expect(depth == expected, "step \(step)")
            #expect(tracker.count == reference.ring.count)
            if step % 500 == 499 {
                tracker = try Self.roundTrip(tracker, segmenting: step % 1000 == 999)
            }
        }
    }

    @Test("Full blocks are segments; a block that changes gets a new identity, the others keep theirs")
    func blocksAsSegments() throws {
        var tracker = CascadeTracker(capacity: 4 * 64)
        for index in 0..<(3 * 64 + 5) { _ = tracker.record(shareID: "a\(index)", parentID: nil) }
        func segments() -> [StateSegment] {
            var writer = BinaryWriter()
            writer.segmenting = true
            tracker.write(to: &writer)
            return writer.segments
        }
        let first = segments()
        #expect(first.count == 3)
        #expect(first.allSatisfy { $0.byteCount == 2 * 64 * 8 })
        // A re-share of a share in the second block changes that block only.
        _ = tracker.record(shareID: "a70", parentID: "a1")
        let second = segments()
        #expect(second.map(\.id)[0] == first.map(\.id)[0])
        #expect(second.map(\.id)[1] != first.map(\.id)[1])
        #expect(second.map(\.id)[2] == first.map(\.id)[2])
        // Filling the ring seals the fourth block; wrapping overwrites the first.
        for index in 0..<(64 - 5 + 1) { _ = tracker.record(shareID: "b\(index)", parentID: nil) }
        let third = segments()
        #expect(third.count == 4)
        #expect(third[0].id != second[0].id)
        #expect(third[2].id == second[2].id)
        // Restored, the ring gives the same depths: a70's depth is 2.
        var restored = try Self.roundTrip(tracker, segmenting: true)
        #expect(restored.record(shareID: "c", parentID: "a70") == 3)
        #expect(restored.record(shareID: "d", parentID: "a0") == 1)  // overwritten by the wrap
    }
}
