import CoreMetrics
import Logging
import PulseCore
import PulseKafka

/// Wires the daemon's parts for one process: producer, ingest pipeline, consumer with rebalance hooks,
/// and the services that run them.
public struct Daemon: Sendable {
    /// What `crowdpulse run` and `crowdpulse demo` configure.
    public struct Configuration: Sendable {
        public var client: KafkaClientConfiguration
        public var groupID: String
        public var topics: TopicNames
        public var decoder: EventDecoder.Configuration
        public var dedup: Deduplicator.Configuration
        public var windows: WindowEngine.Configuration
        /// `processing.commit_interval`: 5 s by default; ``Settings`` makes it 1 s under `exactly_once`, where
        /// outputs are visible only at commits. A stream that pauses is committed at once whatever it is.
        public var commitInterval: Duration
        /// How much of each changelog partition the broker keeps (`processing.changelog_retained_bytes`;
        /// 0: all that compaction keeps, as Kafka does).
        public var changelogRetainedBytes = Changelog.defaultRetainedBytes
        /// The changelog's `compression.codec` (`processing.changelog_compression`). Checkpoints hold hashes and
        /// counters more than text: lz4 makes them about 1.5 times smaller, for about a tenth of the daemon's
        /// CPU on a live stream (docs/performance.md).
        public var changelogCompression = "lz4"
        public var sessionTimeout: Duration
        /// Crisis detection; `nil` turns it off.
        public var detection: CrisisDetector.Configuration? = CrisisDetector.Configuration()
        /// Alert delivery over HTTP (the alerts topic is always written).
        public var alerts = AlertDelivery.Configuration()
        /// `processing.guarantee`.
        public var guarantee = ProcessingGuarantee.atLeastOnce
        /// `processing.threads`: threads a batch is processed on, each holding a share of the partitions
        /// (Kafka Streams' `num.stream.threads`, inside one consumer); one per core by default.
        public var threads = Machine.cores
        /// `transactional.id` under `exactly_once`; unique per process by default (zombies are fenced
        /// through the consumer group's generation, KIP-447, as Kafka Streams' `exactly_once_v2` does).
        public var transactionalID: String?

        public init(
            client: KafkaClientConfiguration,
            groupID: String = "crowdpulse",
            topics: TopicNames = TopicNames(),
            decoder: EventDecoder.Configuration = EventDecoder.Configuration(),
            dedup: Deduplicator.Configuration = Deduplicator.Configuration(),
            windows: WindowEngine.Configuration = WindowEngine.Configuration(),
            commitInterval: Duration = .seconds(5),
            sessionTimeout: Duration = .seconds(45)
        ) {
            self.client = client
            self.groupID = groupID
            self.topics = topics
            self.decoder = decoder
            self.dedup = dedup
            self.windows = windows
            self.commitInterval = commitInterval
            self.sessionTimeout = sessionTimeout
        }
    }

    public let consumer: KafkaConsumer
    public let producer: KafkaProducer
    public let pipeline: IngestPipeline
    /// Checkpoints and restores of partition state; `nil` when the changelog topic cannot be used.
    public let changelog: Changelog?
    public let stats: ConsumptionStats
    public let service: PipelineService
    /// Alertmanager and webhook delivery, when configured: run it as a service next to ``service``.
    public let alertDelivery: AlertDelivery?
    /// What the query API and the dashboard show.
    public let live: LiveView

    /// - Parameters:
    ///   - onAlert: called for every alert state change, on the pipeline task (keep it cheap).
    ///   - onEvent: called for every accepted event, on the pipeline task (keep it cheap).
    public init(
        configuration: Configuration,
        metrics: IngestMetrics = IngestMetrics(),
        stats: ConsumptionStats = ConsumptionStats(),
        logger: Logger,
        externalURL: String = "crowdpulse://",
        live: LiveView = LiveView(),
        onAlert: @escaping @Sendable (AlertRecord) -> Void = { _ in },
        onEvent: @escaping @Sendable (Event, TopicPartition) -> Void = { _, _ in }
    ) throws(KafkaError) {
        self.live = live
        let alertDelivery =
            configuration.alerts.isEnabled
            ? AlertDelivery(configuration: configuration.alerts, externalURL: externalURL, logger: logger) : nil
        self.alertDelivery = alertDelivery
        var producerClient = configuration.client
        producerClient.clientID += "-producer"
        let transactional = configuration.guarantee == .exactlyOnce
        self.producer = try KafkaProducer(
            configuration: .init(
                client: producerClient,
                transactionalID: transactional
                    ? configuration.transactionalID
                        ?? "\(configuration.groupID)-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))" : nil,
                topicCompression: [configuration.topics.changelog: configuration.changelogCompression]
            ),
            logger: logger
        )
        var repartitionPartitions: Int32 = 1
        do throws(KafkaError) {
            repartitionPartitions = Int32(try self.producer.partitionCount(of: configuration.topics.repartition))
        } catch {
            logger.warning(
                "Cannot read the repartition topic's partitions; assuming 1",
                metadata: ["kafka.topic": "\(configuration.topics.repartition)", "kafka.error": "\(error)"]
            )
        }
        var inputPartitions: [String: Int32] = [:]
        for topic in configuration.topics.input {
            do throws(KafkaError) {
                inputPartitions[topic] = Int32(try self.producer.partitionCount(of: topic))
            } catch {
                logger.warning(
                    "Cannot read an input topic's partitions; brand windows will wait for idle close",
                    metadata: ["kafka.topic": "\(topic)", "kafka.error": "\(error)"]
                )
            }
        }
        self.pipeline = IngestPipeline(
            producer: self.producer,
            topics: configuration.topics,
            decoder: EventDecoder(configuration: configuration.decoder),
            dedup: configuration.dedup,
            windows: configuration.windows,
            repartitionPartitions: repartitionPartitions,
            inputPartitions: inputPartitions,
            detection: configuration.detection,
            alerts: configuration.alerts,
            alertDelivery: alertDelivery,
            consumerLag: { [stats] partition in
                let lags = stats.current.consumerLag
                guard let partition else { return lags.isEmpty ? nil : lags.values.reduce(0, +) }
                return lags[partition]
            },
            live: live,
            onAlert: onAlert,
            metrics: metrics,
            logger: logger,
            isCaughtUp: { [producer = self.producer] partition, next in
                // Unknown (the broker did not answer): treat as caught up, as before this check existed.
                guard let high = try? producer.highWatermark(partition) else { return true }
                return next >= high
            },
            threads: configuration.threads,
            onEvent: onEvent
        )
        var changelog: Changelog? = nil
        do throws(KafkaError) {
            let partitions = Int32(try self.producer.partitionCount(of: configuration.topics.changelog))
            changelog = try Changelog(
                topic: configuration.topics.changelog,
                partitions: partitions,
                fingerprint: IngestPipeline.stateFingerprint(windows: self.pipeline.windows),
                producer: self.producer,
                client: configuration.client,
                retainedBytes: configuration.changelogRetainedBytes,
                logger: logger
            )
        } catch {
            logger.error(
                "Changelog topic unavailable: state will not survive a restart or a rebalance",
                metadata: ["kafka.topic": "\(configuration.topics.changelog)", "kafka.error": "\(error)"]
            )
        }
        self.changelog = changelog
        let coordination = CommitCoordination()
        var consumerClient = configuration.client
        if transactional && consumerClient.librdkafka["isolation.level"] == nil {
            // Brand partials on the repartition topic count only once their transaction commits.
            consumerClient.librdkafka["isolation.level"] = "read_committed"
        }
        if consumerClient.statisticsInterval == nil && consumerClient.librdkafka["statistics.interval.ms"] == nil {
            consumerClient.statisticsInterval = .seconds(5)
        }
        self.consumer = try KafkaConsumer(
            configuration: .init(
                client: consumerClient,
                groupID: configuration.groupID,
                topics: configuration.topics.input + [configuration.topics.repartition],
                commitMode: .manual,
                sessionTimeout: configuration.sessionTimeout,
                // Nothing reads the input's or the repartition topic's headers (dead letters carry their
                // own), and asking librdkafka for them costs two allocations per message even when there
                // are none (session 15's allocation profile).
                copiesHeaders: false
            ),
            hooks: PipelineService.rebalanceHooks(
                pipeline: self.pipeline,
                producer: self.producer,
                changelog: changelog,
                stats: stats,
                guarantee: configuration.guarantee,
                coordination: coordination,
                logger: logger
            ),
            statistics: { [inputTopics = configuration.topics.input] statistics in
                for partition in statistics.partitions where inputTopics.contains(partition.topicPartition.topic) {
                    guard let lag = partition.consumerLag else { continue }
                    metrics.consumerLag(partition.topicPartition.topic, partition.topicPartition.partition).record(lag)
                    stats.update { $0.consumerLag[partition.topicPartition] = lag }
                }
            },
            logger: logger
        )
        self.stats = stats
        self.service = PipelineService(
            consumer: self.consumer,
            producer: self.producer,
            pipeline: self.pipeline,
            changelog: changelog,
            stats: self.stats,
            commitInterval: configuration.commitInterval,
            guarantee: configuration.guarantee,
            coordination: coordination,
            logger: logger
        )
    }

    /// `/v1/status`: consumption counters, assignment and lag, as JSON.
    public func statusJSON() -> String {
        let snapshot = self.stats.current
        let lag = snapshot.assignment.compactMap { snapshot.consumerLag[$0] }
        return JSONText.object([
            ("events", String(snapshot.messages)), ("accepted", String(snapshot.accepted)),
            ("dead_lettered", String(snapshot.deadLettered)), ("duplicates", String(snapshot.duplicates)),
            ("metric_records", String(self.pipeline.outputCounts.metrics)),
            ("alert_records", String(self.pipeline.alertCount)),
            ("partitions", String(snapshot.assignment.count)),
            ("consumer_lag", lag.isEmpty ? "null" : String(lag.reduce(0, +))),
            ("entities", String(self.live.entityCount)),
        ])
    }
}
