import PulseCore
import Testing

@Suite("Crisis detector: bounded state")
struct DetectorBoundsTests {
    @Test("100 000 distinct subjects with a cap of 5 000: the cap holds, the evictions are counted")
    func cap() {
        var detector = CrisisDetector(level: .subject, configuration: .init(maxEntities: 5_000))
        let start: Int64 = 1_790_000_000_000 - 1_790_000_000_000 % 60_000
        for index in 0..<100_000 {
            var aggregate = WindowAggregate()
            aggregate.brand = "b\(index % 50)"
            aggregate.scored = 3
            aggregate.negative = 1
            let minute = start + Int64(index / 1_000) * 60_000
            detector.observe(
                MetricsRecord(
                    key: EntityKey(.subject, "post-\(index)"),
                    windowStart: minute,
                    windowEnd: minute + 60_000,
                    isFinal: true,
                    revision: 0,
                    aggregate: aggregate,
                    previousShares: nil
                )
            )
            #expect(detector.entityCount <= 5_000)
            if index % 1_000 == 999 { _ = detector.advance(to: minute + 60_000) }
        }
        #expect(detector.evictions >= 95_000)
        #expect(detector.entityCount > 4_000, "evicting in batches, not emptying")
    }
}
