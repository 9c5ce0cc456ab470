import Foundation
import Logging
import PulseCore
import PulseDaemon
import PulseKafka
import ServiceLifecycle
import Testing

@Suite("Metrics end to end: Kafka agrees with replay")
struct MetricsEndToEndTests {
    @Test(
        "A generated stream through the embedded broker gives the same final records as replay",
        .timeLimit(.minutes(2))
    )
    func kafkaMatchesReplay() async throws {
        // 3 000 events over 6 minutes of event time, in time order, ending 10 minutes ago (so the live
        // future-skew check passes); 40 subjects, 5 brands: brands span all input partitions.
        let end = (WallClock.nowMillis() - 10 * 60_000) / 60_000 * 60_000
        let start = end - 6 * 60_000
        var generator = SyntheticEvents(configuration: .init(subjects: 40, brands: 5, users: 300, seed: 11))
        let events = (0..<3000).map { generator.next(occurredAtMillis: start + Int64($0) * 120) }

        // Replay: one partition, no wall clock.
        var replay = Replay(sourceName: "test")
        var expected: [String: String] = [:]
        for event in events {
            let lines = Array(event.json.utf8).withUnsafeBytes { replay.feed($0, offset: 0) }
            for line in lines where line.topic == "metrics" {
                if case .json(let value) = line.value { expected[line.key!] = value }
            }
        }
        for line in replay.finish() where line.topic == "metrics" {
            if case .json(let value) = line.value { expected[line.key!] = value }
        }
        #expect(expected.keys.contains { $0.hasPrefix("brand|") })
        #expect(expected.count > 100)

        // Kafka: 3 input partitions, 2 repartition partitions, events keyed by subject.
        let names = TopicNames()
        let broker = try EmbeddedBroker(
            topics: names.provisioning(inputPartitions: 3, outputPartitions: 2).map {
                EmbeddedBroker.Topic($0.name, partitions: $0.partitions)
            },
            logger: daemonTestLogger
        )
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        for event in events {
            try producer.send(ProducerRecord(topic: names.input[0], key: event.key, value: event.json))
        }
        try await producer.flush()
        #expect(producer.failedDeliveries == 0)

        var windows = WindowEngine.Configuration()
        windows.idleCloseMillis = 2000  // the stream ends: close what is left after 2 s of silence
        let daemon = try Daemon(
            configuration: .init(client: client, groupID: "e2e", windows: windows, sessionTimeout: .seconds(6)),
            logger: daemonTestLogger
        )
        let group = ServiceGroup(services: [daemon.service], logger: daemonTestLogger)
        let running = Task { try await group.run() }

        // Read the metrics topic with an independent consumer until every expected key has arrived.
        let reader = try KafkaConsumer(
            configuration: .init(
                client: client,
                groupID: "e2e-reader",
                topics: [names.metrics],
                sessionTimeout: .seconds(6)
            ),
            logger: daemonTestLogger
        )
        try reader.subscribe()
        var actual: [String: String] = [:]
        let deadline = ContinuousClock.now + .seconds(90)
        while actual.count < expected.count && ContinuousClock.now < deadline {
            guard let batch = try await reader.nextBatch(maxWait: .seconds(1)) else { break }
            for message in batch {
                actual[String(decoding: message.key ?? [], as: UTF8.self)] = String(
                    decoding: message.value,
                    as: UTF8.self
                )
            }
        }
        await reader.close()
        await group.triggerGracefulShutdown()
        try await running.value

        #expect(Set(actual.keys) == Set(expected.keys))
        var mismatches = 0
        for (key, value) in expected where actual[key] != value {
            mismatches += 1
            if mismatches <= 3 { Issue.record("\(key)\nreplay: \(value)\nkafka:  \(actual[key] ?? "missing")") }
        }
        #expect(mismatches == 0)
    }
}
