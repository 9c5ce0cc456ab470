import PulseCore
import Testing

@Suite("Binary codec of aggregates")
struct BinaryCodecTests {
    /// Aggregates as the engine builds them: every event type, sentiment, cascades, purchases in several
    /// currencies, crisis evidence, and counters both exact and past their exact limit.
    static func aggregates() -> [WindowAggregate] {
        var configuration = WindowEngine.Configuration()
        configuration.uniqueExactLimit = 50
        var engine = WindowEngine(configuration: configuration)
        var generator = SyntheticEvents(configuration: .init(subjects: 20, brands: 3, users: 5_000, seed: 3))
        let decoder = EventDecoder()
        var records: [WindowAggregate] = []
        for index in 0..<20_000 {
            let json = generator.next(occurredAtMillis: 1_790_000_000_000 + Int64(index) * 20).json
            guard case .success(let event) = decoder.decode(json, nowMillis: nil) else { continue }
            for case .metrics(let record) in engine.add(event) { records.append(record.aggregate) }
        }
        for case .metrics(let record) in engine.closeAll() { records.append(record.aggregate) }
        // And a small one by hand: exact counters, several currencies, no brand.
        var small = WindowAggregate()
        for user in 0..<7 { small.users.insert(UInt64(user) &* 0x9E37_79B9_7F4A_7C15) }
        small.purchasers.insert(42)
        small.amountMicros = ["EUR": 12_500_000, "JPY": 3_000_000_000, "XXX": -1]
        small.sharesByDepth = [0: 3, 2: 1]
        small.sharerFollowers = ["ü-ser": FollowerCount(followers: 12, at: -3)]
        records.append(small)
        return records
    }

    @Test("Every aggregate survives a round trip, equal in every field")
    func roundTrip() throws {
        let aggregates = Self.aggregates()
        #expect(aggregates.count > 50)
        #expect(aggregates.contains { $0.users.isApproximate } && aggregates.contains { !$0.users.isApproximate })
        #expect(aggregates.contains { $0.crisis != nil && !($0.crisis!.comments.isEmpty) })
        #expect(aggregates.contains { $0.amountMicros.count > 1 })
        for aggregate in aggregates {
            var writer = BinaryWriter()
            aggregate.write(to: &writer)
            var reader = BinaryReader(writer.bytes)
            let decoded = try WindowAggregate(reading: &reader)
            #expect(reader.isAtEnd)
            #expect(decoded == aggregate)
        }
    }

    @Test("Truncated or corrupted input is an error, never a crash")
    func corrupted() throws {
        let aggregate = try #require(Self.aggregates().first { $0.crisis != nil })
        var writer = BinaryWriter()
        aggregate.write(to: &writer)
        let bytes = writer.bytes
        for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 200)) {
            var reader = BinaryReader(Array(bytes.prefix(length)))
            #expect(throws: BinaryDecodingError.self) { _ = try WindowAggregate(reading: &reader) }
        }
        var random = SplitMix64(seed: 9)
        for _ in 0..<2_000 {
            var mutated = bytes
            mutated[Int(random.next() % UInt64(mutated.count))] = UInt8(truncatingIfNeeded: random.next())
            var reader = BinaryReader(mutated)
            _ = try? WindowAggregate(reading: &reader)  // must not trap
        }
    }

    @Test("Varints and zigzag integers at the edges")
    func integers() throws {
        var writer = BinaryWriter()
        let values: [Int64] = [0, 1, -1, 63, -64, 64, 1 << 40, Int64.max, Int64.min]
        for value in values { writer.int(value) }
        writer.varint(UInt64.max)
        var reader = BinaryReader(writer.bytes)
        for value in values { #expect(try reader.int64() == value) }
        #expect(try reader.varint() == UInt64.max)
        #expect(reader.isAtEnd)
    }
}
