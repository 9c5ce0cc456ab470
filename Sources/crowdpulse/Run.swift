import ArgumentParser
import Logging
import PulseDaemon
import PulseKafka
import ServiceLifecycle
import UnixSignals

/// Options for connecting to Kafka.
struct KafkaOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers (host:port,…).")
    var bootstrapServers: String

    @Option(help: "Consumer group id.")
    var groupId: String = "crowdpulse"

    @Option(name: .customLong("topic"), help: "Input topic (repeatable).")
    var topics: [String] = ["crowdpulse.events"]

    @Option(
        name: [.customShort("X"), .customLong("librdkafka")],
        help: "Any librdkafka property as key=value, e.g. -X security.protocol=SASL_SSL (repeatable)."
    )
    var librdkafka: [String] = []

    func client() throws -> KafkaClientConfiguration {
        KafkaClientConfiguration(
            bootstrapServers: self.bootstrapServers,
            librdkafka: try parseProperties(self.librdkafka, option: "--librdkafka")
        )
    }
}

/// `crowdpulse run`: the daemon against a Kafka cluster.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume interaction events from Kafka: validate, deduplicate, dead-letter what is rejected."
    )

    @OptionGroup var common: CommonOptions
    @OptionGroup var kafka: KafkaOptions

    @Flag(inversion: .prefixedNo, help: "Create the daemon's topics at start when they are missing.")
    var createTopics = true

    @Option(help: "Partitions for topics the daemon creates.")
    var partitions: Int32 = 6

    @Option(help: "Address of the HTTP endpoints (/metrics, /healthz, /readyz), host:port (http.listen).")
    var httpListen: String = "127.0.0.1:9720"

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        let client = try self.kafka.client()
        var names = TopicNames()
        names.input = self.kafka.topics
        if self.createTopics {
            let admin = try KafkaAdmin(configuration: client, logger: logger)
            let topics = names.provisioning(inputPartitions: self.partitions, outputPartitions: self.partitions).map {
                KafkaAdmin.NewTopic(name: $0.name, partitions: $0.partitions, configs: $0.configs)
            }
            await TopicProvisioner(admin: admin, logger: logger).ensure(topics)
        }
        let registry = bootstrapPrometheus()
        let daemon = try Daemon(
            configuration: .init(client: client, groupID: self.kafka.groupId, topics: names),
            logger: logger
        )
        let http = try HTTPEndpoints.service(
            listen: self.httpListen,
            registry: registry,
            readiness: HTTPEndpoints.readiness(of: daemon),
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: daemon.service),
                    .init(service: ProgressReporter(stats: daemon.stats, interval: .seconds(10), logger: logger)),
                    .init(service: http),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
