import Logging
import PulseDaemon
import PulseKafka
import ServiceLifecycle
import Testing

@Suite("Daemon services on the embedded broker")
struct ConsumeServiceTests {
    @Test(
        "The consume service hands over every event, and a graceful shutdown commits and leaves the group",
        .timeLimit(.minutes(1))
    )
    func consumesAndCommitsOnShutdown() async throws {
        let broker = try EmbeddedBroker(topics: [.init("crowdpulse.events", partitions: 3)], logger: daemonTestLogger)
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

        let consumer = try KafkaConsumer(
            configuration: .init(
                client: client,
                groupID: "daemon",
                topics: ["crowdpulse.events"],
                commitMode: .automatic(interval: .seconds(60)),
                sessionTimeout: .seconds(6)
            ),
            logger: daemonTestLogger
        )
        let stats = ConsumptionStats()
        let group = ServiceGroup(
            services: [ConsumeService(consumer: consumer, stats: stats, logger: daemonTestLogger)],
            logger: daemonTestLogger
        )
        let running = Task { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(30)
        while stats.current.messages < total && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(stats.current.messages == total)
        await group.triggerGracefulShutdown()
        try await running.value

        // Everything processed was committed by the shutdown (the interval alone would not have run yet).
        let probe = try KafkaConsumer(
            configuration: .init(client: client, groupID: "daemon", topics: ["crowdpulse.events"]),
            logger: daemonTestLogger
        )
        let committed = try probe.committed((0..<3).map { TopicPartition("crowdpulse.events", $0) })
        #expect(committed.map(\.offset).reduce(0, +) == Int64(total))
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
