import Foundation
import Logging
import PulseCore
import PulseDaemon
import PulseKafka
import ServiceLifecycle
import Testing

@Suite("Metrics end to end: Kafka agrees with replay")
struct MetricsEndToEndTests {
    /// With one processing thread, and with three (each holding one input partition's state, two of them a
    /// brand stage's too): sharding the partitions over threads changes no record.
    @Test(
        "A generated stream through the embedded broker gives the same final records as replay",
        .timeLimit(.minutes(2)),
        arguments: [1, 3]
    )
    func kafkaMatchesReplay(threads: Int) async throws {
        // 3 000 events over 6 minutes of event time, in time order, ending 10 minutes ago (so the live
        // future-skew check passes); 40 subjects, 5 brands: brands span all input partitions.
        let end = (WallClock.nowMillis() - 10 * 60_000) / 60_000 * 60_000
        let start = end - 6 * 60_000
        var generator = SyntheticEvents(configuration: .init(subjects: 40, brands: 5, users: 300, seed: 11))
        let events = (0..<3000).map { generator.next(occurredAtMillis: start + Int64($0) * 120) }

        // Replay: one partition, no wall clock.
        let expected = replayMetrics(events)
        #expect(expected.keys.contains { $0.hasPrefix("brand|") })
        #expect(expected.count > 100)

        // Kafka: 3 input partitions, 2 repartition partitions, events keyed by subject; read the metrics
        // topic until every expected key has arrived.
        let records = try await runEmbeddedDaemon(
            events: events.map { ($0.key, $0.json) },
            groupID: "e2e-\(threads)",
            threads: threads,
            output: { $0.metrics },
            done: { records in Set(records.map(\.key)).count >= expected.count }
        )
        var actual: [String: String] = [:]
        for record in records { actual[record.key] = record.value }
        #expect(Set(actual.keys) == Set(expected.keys))
        var mismatches = 0
        for (key, value) in expected where actual[key] != value {
            mismatches += 1
            if mismatches <= 3 { Issue.record("\(key)\nreplay: \(value)\nkafka:  \(actual[key] ?? "missing")") }
        }
        #expect(mismatches == 0)
    }
}
