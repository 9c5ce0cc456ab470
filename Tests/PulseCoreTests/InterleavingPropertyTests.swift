import PulseCore
import Testing

/// The final records must not depend on how events are split into batches or interleaved across
/// partitions, as long as each partition's order is kept.
@Suite("Windows: order independence")
struct InterleavingPropertyTests {
    /// Final records by key, with revision numbers set aside (how many revisions a window gets depends on
    /// how stream time advanced in each partition).
    static func finals(_ outputs: [WindowEngine.Output]) -> [String: String] {
        var records: [String: String] = [:]
        for case .metrics(var record) in outputs where record.isFinal {
            record.revision = 0
            records[record.recordKey] = record.render()
        }
        return records
    }

    @Test(
        "Two partitions, any interleaving, give the final records one pass gives (both emit modes)",
        arguments: [(1, false), (2, false), (3, false), (4, true), (5, true)]
    )
    func interleavings(_ seed: UInt64, _ updates: Bool) {
        let emit: WindowEngine.EmitMode = updates ? .updates(intervalMillis: 20_000) : .final
        var generator = SyntheticEvents(configuration: .init(subjects: 30, brands: 4, users: 200, seed: seed))
        let start: Int64 = 1_795_687_200_000
        let events = (0..<1500).compactMap { index -> Event? in
            let generated = generator.next(occurredAtMillis: start + Int64(index) * 200)
            return try? EventDecoder().decode(generated.json, nowMillis: nil).get()
        }
        #expect(events.count == 1500)

        var single = WindowEngine(configuration: .init(emit: emit))
        var expected: [WindowEngine.Output] = []
        for event in events { expected += single.add(event) }
        expected += single.closeAll()

        // Split by subject into two partitions; interleave randomly, keeping each partition's order.
        var partitions: [[Event]] = [[], []]
        for event in events { partitions[Int(stableHash(event.subjectID) % 2)].append(event) }
        var engines = [
            WindowEngine(configuration: .init(emit: emit, brands: .partials)),
            WindowEngine(configuration: .init(emit: emit, brands: .partials)),
        ]
        var merger = BrandMerger(configuration: .init(emit: emit), sources: [0, 1])
        var outputs: [WindowEngine.Output] = []
        var positions = [0, 0]
        var random = SplitMix64(seed: seed &* 7919)
        func deliver(_ produced: [WindowEngine.Output], from source: Int32, watermark: Int64, idle: Bool = false) {
            for output in produced {
                switch output {
                case .brandPartial(let brand, let windowStart, let aggregate, let isFinal):
                    outputs += merger.add(
                        brand: brand,
                        windowStart: windowStart,
                        aggregate: aggregate,
                        source: source,
                        isFinal: isFinal
                    ).map { .metrics($0) }
                default:
                    outputs.append(output)
                }
            }
            outputs += merger.advance(source: source, watermark: watermark, idle: idle).map { .metrics($0) }
        }
        while positions[0] < partitions[0].count || positions[1] < partitions[1].count {
            var side = Int(random.next() % 2)
            if positions[side] >= partitions[side].count { side = 1 - side }
            // A random batch of 1–40 events from that partition.
            let batch = 1 + Int(random.next() % 40)
            for _ in 0..<batch where positions[side] < partitions[side].count {
                let produced = engines[side].add(partitions[side][positions[side]])
                positions[side] += 1
                deliver(produced, from: Int32(side), watermark: engines[side].watermark)
            }
        }
        for side in 0..<2 {
            let produced = engines[side].closeAll()
            deliver(produced, from: Int32(side), watermark: engines[side].watermark, idle: true)
        }
        outputs += merger.closeAll().map { .metrics($0) }

        let expectedRecords = Self.finals(expected)
        let actualRecords = Self.finals(outputs)
        #expect(expectedRecords.count > 50)
        #expect(actualRecords.keys.sorted() == expectedRecords.keys.sorted())
        #expect(actualRecords == expectedRecords)
        if updates {
            // Brand records get revisions too, numbered upwards, the final one last.
            var revisions: [String: [(Int, Bool)]] = [:]
            for case .metrics(let record) in outputs where record.key.level == .brand {
                revisions[record.recordKey, default: []].append((record.revision, record.isFinal))
            }
            #expect(revisions.values.contains { $0.count > 1 })
            for (key, list) in revisions {
                #expect(list.map(\.0) == Array(0..<list.count), "\(key)")
                #expect(list.last?.1 == true && list.dropLast().allSatisfy { !$0.1 }, "\(key)")
            }
        }
    }
}
