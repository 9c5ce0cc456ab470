import Foundation
import Logging
import Prometheus
import PulseCore
import PulseDaemon
import PulseKafka
import ServiceLifecycle
import Synchronization
import Testing

/// `/metrics` values after a known stream, readiness transitions, and a graceful shutdown handing the
/// partitions to another instance — on the embedded broker.
@Suite("Operations: metrics values, readiness, handover", .serialized)
struct OperationsTests {
    static func broker() throws -> EmbeddedBroker {
        try EmbeddedBroker(
            topics: TopicNames().provisioning(inputPartitions: 3, outputPartitions: 1).map {
                EmbeddedBroker.Topic($0.name, partitions: $0.partitions)
            },
            logger: daemonTestLogger
        )
    }

    /// The value of one sample line of Prometheus text, e.g. `crowdpulse_duplicates_total`.
    static func value(_ text: String, _ sample: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1))
        }
        return nil
    }

    @Test("/metrics after a known stream: counts by type, dead letters by reason, duplicates; readiness transitions")
    func metricsAndReadiness() async throws {
        let broker = try Self.broker()
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        var generator = SyntheticEvents(configuration: .init(subjects: 30, brands: 3, seed: 5))
        var byType: [String: Int] = [:]
        let now = WallClock.nowMillis()
        var sent = 0
        for index in 0..<400 {
            let event = generator.next(occurredAtMillis: now - 60_000 + Int64(index) * 100)
            byType[event.type, default: 0] += 1
            try producer.send(ProducerRecord(topic: "crowdpulse.events", key: event.key, value: event.json))
            sent += 1
            if index % 100 == 0 {  // the same event again: a duplicate, same key
                try producer.send(ProducerRecord(topic: "crowdpulse.events", key: event.key, value: event.json))
                sent += 1
            }
        }
        for bad in [#"{"event_id":"x1","type":"like""#, #"{"event_id":"x2","type":"like"}"#, "not json at all"] {
            try producer.send(ProducerRecord(topic: "crowdpulse.events", key: "bad", value: bad))
            sent += 1
        }
        try await producer.flush()

        let registry = PrometheusCollectorRegistry()
        let metrics = IngestMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let daemon = try Daemon(
            configuration: .init(client: client, groupID: "ops", sessionTimeout: .seconds(6)),
            metrics: metrics,
            logger: daemonTestLogger
        )
        let readiness = HTTPEndpoints.readiness(of: daemon, maxLag: 1000)
        #expect(!readiness().isReady && readiness().reason == "no partitions assigned yet")

        let group = ServiceGroup(services: [daemon.service], logger: daemonTestLogger)
        let running = Task { try await group.run() }
        // Generous: the embedded broker's first group join took over 40 s once, with the whole suite running
        // in parallel on two cores. The loop ends as soon as everything is consumed.
        let deadline = ContinuousClock.now + .seconds(120)
        while daemon.stats.current.messages < sent && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(readiness().isReady, "\(readiness().reason)")
        // Lag above the bound (as librdkafka statistics would report it): not ready, with the reason.
        let partition = try #require(daemon.consumer.assignment.first)
        daemon.stats.update { $0.consumerLag[partition] = 5_000 }
        #expect(!readiness().isReady && readiness().reason.contains("consumer lag 5000 > 1000"))
        daemon.stats.update { $0.consumerLag[partition] = 0 }
        #expect(readiness().isReady)

        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        #expect(Self.value(text, "crowdpulse_records_consumed_total") == Double(sent))
        for (type, count) in byType {
            #expect(Self.value(text, #"crowdpulse_events_consumed_total{type="\#(type)"}"#) == Double(count), "\(type)")
        }
        #expect(Self.value(text, "crowdpulse_duplicates_total") == 4)
        #expect(Self.value(text, #"crowdpulse_dead_letters_total{reason="malformed_json"}"#) == 2)
        #expect(Self.value(text, #"crowdpulse_dead_letters_total{reason="missing_field"}"#) == 1)
        #expect(Self.value(text, "crowdpulse_events_accepted_total") == 400)
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(!readiness().isReady, "after shutdown the partitions are gone")
    }

    @Test("A graceful shutdown leaves the group and commits: the other instance takes over and goes on")
    func handover() async throws {
        let broker = try Self.broker()
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        func produce(_ count: Int, seed: UInt64) async throws {
            var generator = SyntheticEvents(configuration: .init(subjects: 60, brands: 4, seed: seed))
            let now = WallClock.nowMillis()
            for index in 0..<count {
                let event = generator.next(occurredAtMillis: now - 30_000 + Int64(index))
                try producer.send(ProducerRecord(topic: "crowdpulse.events", key: event.key, value: event.json))
            }
            try await producer.flush()
        }
        func daemon() throws -> Daemon {
            try Daemon(
                configuration: .init(client: client, groupID: "handover", sessionTimeout: .seconds(6)),
                logger: daemonTestLogger
            )
        }
        let first = try daemon()
        let second = try daemon()
        let firstGroup = ServiceGroup(services: [first.service], logger: daemonTestLogger)
        let secondGroup = ServiceGroup(services: [second.service], logger: daemonTestLogger)
        let firstRun = Task { try await firstGroup.run() }
        let secondRun = Task { try await secondGroup.run() }
        func inputs(_ daemon: Daemon) -> Set<TopicPartition> {
            Set(daemon.consumer.assignment.filter { $0.topic == "crowdpulse.events" })
        }
        // Both instances share the three input partitions.
        var deadline = ContinuousClock.now + .seconds(40)
        while (inputs(first).isEmpty || inputs(second).isEmpty) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!inputs(first).isEmpty && !inputs(second).isEmpty)
        #expect(inputs(first).isDisjoint(with: inputs(second)))
        try await produce(600, seed: 1)
        deadline = ContinuousClock.now + .seconds(40)
        while first.stats.current.messages + second.stats.current.messages < 600 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let firstPartitions = inputs(first)
        await firstGroup.triggerGracefulShutdown()
        try await firstRun.value
        // What the first instance processed is committed.
        let probe = try KafkaConsumer(
            configuration: .init(client: client, groupID: "handover", topics: ["crowdpulse.events"]),
            logger: daemonTestLogger
        )
        let committed = try probe.committed(Array(firstPartitions))
        #expect(committed.allSatisfy { $0.offset > 0 }, "\(committed)")
        // The second instance takes every input partition and processes what comes next.
        deadline = ContinuousClock.now + .seconds(40)
        while inputs(second).count < 3 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(inputs(second).count == 3)
        let before = second.stats.current.messages
        try await produce(300, seed: 2)
        deadline = ContinuousClock.now + .seconds(40)
        while second.stats.current.messages < before + 300 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(second.stats.current.messages >= before + 300)
        await secondGroup.triggerGracefulShutdown()
        try await secondRun.value
    }
}
