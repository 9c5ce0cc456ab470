import ArgumentParser
import Foundation
import Logging
import PulseDaemon
import PulseKafka
import UnixSignals

/// `crowdpulse broker`: the embedded Kafka-protocol broker as its own process.
struct Broker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an embedded Kafka-protocol broker (librdkafka's mock cluster) until SIGTERM/SIGINT.",
        discussion: """
            Prints `bootstrap.servers=127.0.0.1:PORT[,…]` as the first line on standard output. For tests, demos
            and benchmarks only: it keeps about 5 MiB per partition in memory, has no real transactions or
            compaction, and may time out on CreateTopics from clients, so topics are created here.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Port of the first broker. librdkafka 2.0.2's mock cluster only binds OS-chosen ports, so only 0.")
    var port: Int = 0

    @Option(help: "Number of brokers.")
    var brokers: Int = 1

    @Option(name: .customLong("topic"), help: "A topic to create, as name:partitions (repeatable).")
    var topics: [String] = []

    @Option(help: "Partitions of the input topic and changelog among the default topics.")
    var partitions: Int32 = 6

    @Flag(help: "Do not create CrowdPulse's default topics.")
    var noDefaultTopics = false

    @Option(help: "Latency added to every broker's responses, in milliseconds (a network between client and cluster).")
    var rtt: Int = 0

    func validate() throws {
        guard self.rtt >= 0 else { throw ValidationError("--rtt must be 0 or more milliseconds") }
        guard self.port == 0 else {
            throw ValidationError("--port: the embedded broker binds OS-chosen ports; use 0 and read bootstrap.servers")
        }
        guard self.brokers >= 1 else { throw ValidationError("--brokers must be at least 1") }
        for spec in self.topics where EmbeddedBroker.Topic(spec: spec) == nil {
            throw ValidationError("--topic expects name or name:partitions with partitions > 0, got '\(spec)'")
        }
    }

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        let explicit = self.topics.compactMap(EmbeddedBroker.Topic.init(spec:))
        var all = explicit
        if !self.noDefaultTopics {
            for topic in TopicNames().provisioning(inputPartitions: self.partitions, outputPartitions: self.partitions)
            where !all.contains(where: { $0.name == topic.name }) {
                all.append(EmbeddedBroker.Topic(topic.name, partitions: topic.partitions))
            }
        }
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let broker = try EmbeddedBroker(brokers: self.brokers, topics: all, logger: logger)
        if self.rtt > 0 {
            for id in 1...self.brokers { try broker.setBrokerRTT(Int32(id), .milliseconds(self.rtt)) }
        }
        print("bootstrap.servers=\(broker.bootstrapServers)")
        fflush(nil)
        logger.notice(
            "Embedded broker ready",
            metadata: [
                "kafka.bootstrap": "\(broker.bootstrapServers)",
                "kafka.topics": "\(all.map { "\($0.name):\($0.partitions)" })",
            ]
        )
        for await signal in signals {
            logger.notice("Embedded broker stopping", metadata: ["signal": "\(signal)"])
            break
        }
        withExtendedLifetime(broker) {}
    }
}
