import Foundation
import Logging
import MetricsTestKit
import PulseCore
import PulseKafka
import PulseTestSupport
import ServiceLifecycle
import Synchronization
import Testing

@testable import PulseDaemon

@Suite("Daemon pipeline on the embedded broker")
struct PipelineServiceTests {
    /// Runs a daemon until `done` holds, then shuts it down gracefully.
    func runDaemon(
        _ daemon: Daemon,
        until done: @escaping @Sendable () -> Bool,
        timeout: Duration = .seconds(40)
    ) async throws {
        let group = ServiceGroup(services: [daemon.service], logger: daemonTestLogger)
        let running = Task { try await group.run() }
        let deadline = ContinuousClock.now + timeout
        while !done() && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        await group.triggerGracefulShutdown()
        try await running.value
    }

    func daemonConfiguration(_ broker: EmbeddedBroker, group: String) -> Daemon.Configuration {
        Daemon.Configuration(
            client: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers),
            groupID: group,
            sessionTimeout: .seconds(6)
        )
    }

    /// A consumer that only asks for `group`'s committed offsets of the three input partitions.
    func committedProbe(_ client: KafkaClientConfiguration, group: String) throws -> KafkaConsumer {
        try KafkaConsumer(
            configuration: .init(client: client, groupID: group, topics: ["crowdpulse.events"]),
            logger: daemonTestLogger
        )
    }

    /// The group's committed offsets summed over the input partitions (none committed counts 0).
    func committedTotal(_ probe: KafkaConsumer) throws -> Int64 {
        try probe.committed((0..<3).map { TopicPartition("crowdpulse.events", $0) })
            .map(\.offset).filter { $0 >= 0 }.reduce(0, +)
    }

    func makeBroker() throws -> EmbeddedBroker {
        try EmbeddedBroker(
            topics: TopicNames().provisioning(inputPartitions: 3, outputPartitions: 1).map {
                EmbeddedBroker.Topic($0.name, partitions: $0.partitions)
            },
            logger: daemonTestLogger
        )
    }

    @Test(
        "Good and bad records produced by kcat: good ones accepted, bad ones dead-lettered with headers",
        .timeLimit(.minutes(1))
    )
    func mixedRecordsThroughKafka() async throws {
        let broker = try self.makeBroker()
        let kcat = try #require(findProgram("kcat"), "kcat is not installed: run `make test`, which installs it")
        let now = WallClock.nowMillis()
        func good(_ id: Int, subject: String) -> String {
            #"{"event_id":"g-\#(id)","type":"like","occurred_at":\#(now),"subject_id":"\#(subject)","user_id":"u"}"#
        }
        // key|value lines; the value of each bad record names the reason it must get.
        let records: [(key: String, value: String, reason: String?)] = [
            ("p1", good(1, subject: "p1"), nil),
            ("p1", #"{"event_id":"x","type":"like""#, "malformed_json"),
            ("p2", good(2, subject: "p2"), nil),
            ("p2", #"["not","an","object"]"#, "bad_type"),
            ("p3", #"{"event_id":"m","type":"like","occurred_at":\#(now),"subject_id":"p3"}"#, "missing_field"),
            ("p3", good(3, subject: "p3"), nil),
            (
                "p1", #"{"event_id":"t","type":"poke","occurred_at":\#(now),"subject_id":"p1","user_id":"u"}"#,
                "unknown_type"
            ),
            (
                "p2",
                #"{"event_id":"v","type":"purchase","amount":-5,"occurred_at":\#(now),"subject_id":"p2","user_id":"u"}"#,
                "bad_value"
            ),
            (
                "p3", #"{"event_id":"w","type":"like","occurred_at":"whenever","subject_id":"p3","user_id":"u"}"#,
                "bad_timestamp"
            ),
            (
                "p1",
                #"{"event_id":"f","type":"like","occurred_at":\#(now + 3_600_000),"subject_id":"p1","user_id":"u"}"#,
                "future_timestamp"
            ),
            ("p1", good(1, subject: "p1"), nil),  // a duplicate of the first
            ("p2", good(4, subject: "p2"), nil),
        ]
        let input = records.map { "\($0.key)|\($0.value)" }.joined(separator: "\n") + "\n"
        let produced = try runProgram(
            kcat,
            ["-b", broker.bootstrapServers, "-t", "crowdpulse.events", "-P", "-K", "|"],
            input: input
        )
        #expect(produced.status == 0)
        // A tombstone (null value) for key p1.
        let tombstone = try runProgram(
            kcat,
            ["-b", broker.bootstrapServers, "-t", "crowdpulse.events", "-P", "-K", "|", "-Z"],
            input: "p1|\n"
        )
        #expect(tombstone.status == 0)

        let metrics = TestMetrics()
        let daemon = try Daemon(
            configuration: self.daemonConfiguration(broker, group: "mixed"),
            metrics: IngestMetrics(factory: metrics),
            logger: daemonTestLogger
        )
        let total = records.count + 1
        // The gauges are refreshed once a second: wait for the one that follows the last record.
        @Sendable func dedupEntries() -> Double? { try? metrics.expectGauge("crowdpulse_dedup_entries").lastValue }
        try await self.runDaemon(daemon) { daemon.stats.current.messages >= total && dedupEntries() == 4 }
        #expect(dedupEntries() == 4, "the four accepted event ids (the duplicate adds none)")

        let counters = daemon.pipeline.counters
        #expect(counters.records == total)
        #expect(counters.accepted == 4)
        #expect(counters.duplicates == 1)
        #expect(counters.tombstones == 1)
        #expect(counters.rejectedTotal == 7)
        #expect(try metrics.expectCounter("crowdpulse_dead_letters_total", [("reason", "bad_value")]).totalValue == 1)
        #expect(try metrics.expectCounter("crowdpulse_events_accepted_total").totalValue == 4)
        #expect(try metrics.expectCounter("crowdpulse_events_consumed_total", [("type", "like")]).totalValue == 4)
        #expect(try metrics.expectCounter("crowdpulse_duplicates_total").totalValue == 1)
        #expect(try metrics.expectCounter("crowdpulse_tombstones_total").totalValue == 1)
        #expect(try metrics.expectCounter("crowdpulse_records_consumed_total").totalValue == Int64(total))
        #expect(try metrics.expectCounter("crowdpulse_rebalances_total").totalValue >= 1)
        #expect(try metrics.expectTimer("crowdpulse_event_processing_latency_seconds").values.count >= 1)

        // Read the dead letters back with a separate consumer.
        let reader = try KafkaConsumer(
            configuration: .init(
                client: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers),
                groupID: "dlq-reader",
                topics: ["crowdpulse.deadletter"],
                sessionTimeout: .seconds(6)
            ),
            logger: daemonTestLogger
        )
        try reader.subscribe()
        var letters: [(key: String?, value: String, headers: [String: String])] = []
        while letters.count < 7, let batch = try await reader.nextBatch() {
            for message in batch {
                let headers = Dictionary(message.headers.map { ($0.name, $0.stringValue ?? "") }) { $1 }
                letters.append(
                    (
                        message.key.map { String(decoding: $0, as: UTF8.self) },
                        String(decoding: message.value, as: UTF8.self), headers
                    )
                )
            }
        }
        await reader.close()
        let expectedBad = records.filter { $0.reason != nil }
        #expect(letters.count == expectedBad.count)
        for bad in expectedBad {
            let letter = try #require(letters.first { $0.value == bad.value }, "no dead letter for \(bad.value)")
            #expect(letter.headers["crowdpulse.reason"] == bad.reason)
            #expect(letter.headers["crowdpulse.source.topic"] == "crowdpulse.events")
            #expect(letter.key == bad.key, "dead letters keep the original key")
            #expect(!(letter.headers["crowdpulse.detail"] ?? "").isEmpty)
            #expect(Int32(letter.headers["crowdpulse.source.partition"] ?? "") != nil)
            #expect(Int64(letter.headers["crowdpulse.source.offset"] ?? "") != nil)
        }
        let probe = try KafkaConsumer(
            configuration: .init(
                client: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers),
                groupID: "mixed",
                topics: ["crowdpulse.events"]
            ),
            logger: daemonTestLogger
        )
        // Partitions that received nothing have no committed offset (-1001).
        let committed = try probe.committed((0..<3).map { TopicPartition("crowdpulse.events", $0) })
        #expect(
            committed.map(\.offset).filter { $0 >= 0 }.reduce(0, +) == Int64(total),
            "everything processed is committed"
        )
    }

    @Test(
        "A message too large for the producer is dead-lettered truncated, with crowdpulse.truncated",
        .timeLimit(.minutes(1))
    )
    func oversizeIsTruncated() async throws {
        let broker = try self.makeBroker()
        let producer = try KafkaProducer(
            configuration: .init(
                client: .init(bootstrapServers: broker.bootstrapServers, librdkafka: ["message.max.bytes": "10000000"])
            ),
            logger: daemonTestLogger
        )
        let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 2_000_000)
        _ = try await producer.sendAndWait(
            ProducerRecord(topic: "crowdpulse.events", key: Array("k".utf8), value: huge)
        )

        var configuration = self.daemonConfiguration(broker, group: "huge")
        configuration.client.librdkafka["fetch.message.max.bytes"] = "10000000"
        let daemon = try Daemon(configuration: configuration, logger: daemonTestLogger)
        try await self.runDaemon(daemon) { daemon.stats.current.messages >= 1 }
        #expect(daemon.pipeline.counters.rejected == [.oversize: 1])

        let reader = try KafkaConsumer(
            configuration: .init(
                client: .init(bootstrapServers: broker.bootstrapServers),
                groupID: "huge-reader",
                topics: ["crowdpulse.deadletter"]
            ),
            logger: daemonTestLogger
        )
        try reader.subscribe()
        let batch = try #require(try await reader.nextBatch())
        await reader.close()
        let letter = try #require(batch.first)
        #expect(letter.value.count == IngestPipeline.maxDeadLetterBytes)
        #expect(letter.value.allSatisfy { $0 == UInt8(ascii: "x") })
        let headers = Dictionary(letter.headers.map { ($0.name, $0.stringValue ?? "") }) { $1 }
        #expect(headers["crowdpulse.truncated"] == "true")
        #expect(headers["crowdpulse.reason"] == "oversize")
    }

    @Test("A graceful shutdown commits everything processed", .timeLimit(.minutes(1)))
    func consumesAndCommitsOnShutdown() async throws {
        let broker = try self.makeBroker()
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        let total = 500
        try await SyntheticProducerService(
            producer: producer,
            topic: "crowdpulse.events",
            eventsPerSecond: 100_000,
            limit: total,
            logger: daemonTestLogger
        ).run()
        #expect(producer.failedDeliveries == 0)

        var configuration = self.daemonConfiguration(broker, group: "daemon")
        // No interval commit: the shutdown commits, right after the input is processed (before a tick, a second
        // without input, could).
        configuration.commitInterval = .seconds(3600)
        let daemon = try Daemon(configuration: configuration, logger: daemonTestLogger)
        try await self.runDaemon(daemon) { daemon.stats.current.messages >= total }
        #expect(daemon.stats.current.accepted == total)

        let probe = try KafkaConsumer(
            configuration: .init(client: client, groupID: "daemon", topics: ["crowdpulse.events"]),
            logger: daemonTestLogger
        )
        let committed = try probe.committed((0..<3).map { TopicPartition("crowdpulse.events", $0) })
        #expect(committed.map(\.offset).reduce(0, +) == Int64(total))
    }

    @Test(
        "When input pauses, what was processed is committed at the next tick, however long the interval",
        .timeLimit(.minutes(2)),
        arguments: [ProcessingGuarantee.atLeastOnce, .exactlyOnce]
    )
    func commitsWhenInputPauses(guarantee: ProcessingGuarantee) async throws {
        let broker = try self.makeBroker()
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        func produce(_ count: Int) async throws {
            try await SyntheticProducerService(
                producer: producer,
                topic: "crowdpulse.events",
                eventsPerSecond: 100_000,
                limit: count,
                logger: daemonTestLogger
            ).run()
        }
        try await produce(100)
        var configuration = self.daemonConfiguration(broker, group: "pause")
        configuration.guarantee = guarantee
        configuration.commitInterval = .seconds(3600)  // the interval never comes within the test
        let daemon = try Daemon(configuration: configuration, logger: daemonTestLogger)
        // Under `at_least_once` the group's offsets as the broker serves them. The embedded broker does not
        // serve offsets committed inside a transaction (`send_offsets_to_transaction`) to a consumer's
        // offset fetch, so under `exactly_once` those the daemon saw committed with its transaction.
        let probe = try self.committedProbe(client, group: "pause")
        func committed() throws -> Int64 {
            guarantee == .atLeastOnce
                ? try self.committedTotal(probe)
                : daemon.stats.current.committed.filter { $0.key.topic == "crowdpulse.events" }.values.reduce(0, +)
        }
        func waitForCommitted(_ expected: Int64, within seconds: Int) async throws -> Int64 {
            let deadline = ContinuousClock.now + .seconds(seconds)
            var value = try committed()
            while value < expected && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                value = try committed()
            }
            return value
        }
        let group = ServiceGroup(services: [daemon.service], logger: daemonTestLogger)
        let running = Task { try await group.run() }
        let first = try await waitForCommitted(100, within: 40)
        // Right after a commit, a last burst arrives and the input stops: no later batch comes (idle close
        // would only send records after 60 s), and the interval does not come either.
        try await produce(50)
        let second = try await waitForCommitted(150, within: 20)
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(first == 100)
        #expect(second == 150)
    }

    @Test(
        "A commit waits for its deliveries without stopping processing, and commits once they are delivered",
        .timeLimit(.minutes(2))
    )
    func commitOverlapsProcessing() async throws {
        // Two brokers: the input and the group's coordinator on broker 1, every output and the changelog
        // on broker 2, which then goes down: nothing can be delivered, yet input can still be read.
        let topics = TopicNames().provisioning(inputPartitions: 3, outputPartitions: 1)
        let broker = try EmbeddedBroker(
            brokers: 2,
            topics: topics.map { EmbeddedBroker.Topic($0.name, partitions: $0.partitions) },
            logger: daemonTestLogger
        )
        for topic in topics {
            for partition in 0..<topic.partitions {
                try broker.setPartitionLeader(
                    topic.name,
                    partition,
                    broker: topic.name == "crowdpulse.events" ? 1 : 2
                )
            }
        }
        try broker.setGroupCoordinator("overlap", broker: 1)
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        let probe = try self.committedProbe(client, group: "overlap")
        func committed() throws -> Int64 { try self.committedTotal(probe) }
        // Records that are dead-lettered: each one is an output the commit must wait for.
        func produceBad(_ count: Int, _ label: String) async throws {
            for index in 0..<count {
                _ = try await producer.sendAndWait(
                    ProducerRecord(topic: "crowdpulse.events", key: "\(label)-\(index)", value: "not json \(index)")
                )
            }
        }

        var configuration = self.daemonConfiguration(broker, group: "overlap")
        configuration.commitInterval = .milliseconds(100)
        let daemon = try Daemon(configuration: configuration, logger: daemonTestLogger)
        let group = ServiceGroup(services: [daemon.service], logger: daemonTestLogger)
        let running = Task { try await group.run() }
        try await produceBad(10, "before")
        try await waitUntil("the first records committed") { try committed() == 10 }

        try broker.setBrokerDown(2)
        try await produceBad(10, "during")
        try await waitUntil("the second records processed") { daemon.stats.current.messages >= 20 }
        // A commit covering them has started and cannot finish: its dead letters and checkpoint chunks
        // are undeliverable.
        try await waitUntil("a commit in flight") { daemon.service.coordination.inFlight.withLock { $0 != nil } }
        // Processing goes on meanwhile (a flush here would block the pipeline until broker 2 is back). No
        // input for a few seconds first: the consumer's empty polls (ticks) must not wait for the
        // deliveries either (they waited up to 30 s, so the records below were not processed).
        try await Task.sleep(for: .seconds(3))
        try await produceBad(10, "after")
        try await waitUntil("the third records processed") { daemon.stats.current.messages >= 30 }
        #expect(try committed() == 10, "nothing is committed before its outputs are delivered")

        try broker.setBrokerUp(2)
        try await waitUntil("everything committed") { try committed() == 30 }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(daemon.pipeline.counters.rejectedTotal == 30)
        #expect(daemon.producer.failedDeliveries == 0)
    }

    @Test("Topic provisioning that fails warns and lets the daemon go on", .timeLimit(.minutes(1)))
    func provisioningFailureIsNotFatal() async throws {
        // The embedded broker cannot serve CreateTopics from clients (no controller in its metadata).
        let broker = try EmbeddedBroker(logger: daemonTestLogger)
        let admin = try KafkaAdmin(
            configuration: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers),
            logger: daemonTestLogger
        )
        let failed = await TopicProvisioner(admin: admin, logger: daemonTestLogger).ensure(
            [KafkaAdmin.NewTopic(name: "a", partitions: 1), KafkaAdmin.NewTopic.compacted("b", partitions: 1)],
            timeout: .seconds(1)
        )
        #expect(failed == ["a", "b"])
    }

    @Test("Default topic layout follows the configuration contract")
    func defaultTopics() {
        let names = TopicNames()
        let layout = names.provisioning(inputPartitions: 12, outputPartitions: 3)
        #expect(
            layout.map(\.name) == [
                "crowdpulse.events", "crowdpulse.metrics", "crowdpulse.alerts", "crowdpulse.late",
                "crowdpulse.deadletter", "crowdpulse.repartition", "crowdpulse.changelog",
            ]
        )
        let changelog = layout.last!
        #expect(changelog.partitions == 12)
        #expect(changelog.configs == ["cleanup.policy": "compact"])
        #expect(layout[1].partitions == 3)
    }
}
