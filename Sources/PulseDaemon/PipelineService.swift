import CoreMetrics
import Logging
import PulseCore
import PulseKafka
import ServiceLifecycle
import Synchronization

/// Running totals of what the consumer has handed over, read by reporters and (later) `/metrics`.
public final class ConsumptionStats: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var messages = 0
        public var bytes = 0
        public var batches = 0
        public var accepted = 0
        public var deadLettered = 0
        public var duplicates = 0
        public var acceptedByType: [String: Int] = [:]
        /// The most recent accepted event, for display.
        public var lastEvent: Event?
        public var metricsRecords = 0
        public var lateRecords = 0
        /// Consumer lag per input partition, from librdkafka statistics.
        public var consumerLag: [TopicPartition: Int64] = [:]
        public var assignment: [TopicPartition] = []
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var current: Snapshot { self.state.withLock { $0 } }

    public func update(_ body: (inout Snapshot) -> Void) {
        self.state.withLock { body(&$0) }
    }
}

/// An output could not be delivered, so the offsets it covers were not committed.
public struct UndeliveredOutputs: Error, CustomStringConvertible {
    public var failed: Int
    public var description: String { "\(self.failed) output records were not delivered; offsets not committed" }
}

/// The daemon's main loop: consume batches, ingest them, and commit offsets only after everything a
/// batch produced (dead letters, later metrics and alerts) has been delivered — at-least-once.
///
/// Offsets are committed every `commitInterval`, in the revoke hook (after a flush) before partitions
/// move, and at shutdown. A delivery failure stops the service without committing: the next owner
/// re-reads from the last commit.
public struct PipelineService: Service {
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let pipeline: IngestPipeline
    let stats: ConsumptionStats
    let commitInterval: Duration
    let logger: Logger

    public init(
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        pipeline: IngestPipeline,
        stats: ConsumptionStats,
        commitInterval: Duration = .seconds(1),
        logger: Logger
    ) {
        self.consumer = consumer
        self.producer = producer
        self.pipeline = pipeline
        self.stats = stats
        self.commitInterval = commitInterval
        self.logger = logger
    }

    /// Rebalance hooks that flush and commit a revoked partition's outputs and offsets before it moves,
    /// and drop a lost partition's state without committing.
    public static func rebalanceHooks(
        pipeline: IngestPipeline,
        producer: KafkaProducer,
        logger: Logger
    ) -> KafkaConsumer.RebalanceHooks {
        KafkaConsumer.RebalanceHooks(
            revoked: { consumer, partitions in
                do throws(KafkaError) {
                    try producer.flushSync(timeout: .seconds(10))
                    if producer.failedDeliveries == 0 {
                        try consumer.commitSync(pipeline.processedOffsets(for: partitions))
                    } else {
                        logger.error("Outputs undelivered; not committing revoked partitions")
                    }
                } catch {
                    logger.error("Commit on revoke failed", metadata: ["kafka.error": "\(error)"])
                }
                pipeline.drop(partitions)
            },
            lost: { _, partitions in pipeline.drop(partitions) }
        )
    }

    public func run() async throws {
        try self.consumer.subscribe()
        do {
            let clock = ContinuousClock()
            var lastCommit = clock.now
            var rebalances = 0
            var failures = 0
            for try await batch in self.consumer.batches(maxWait: .seconds(1)).cancelOnGracefulShutdown() {
                try self.pipeline.tick()
                let newRebalances = self.consumer.rebalanceCount
                self.pipeline.metrics.rebalances.increment(by: newRebalances - rebalances)
                rebalances = newRebalances
                let newFailures = self.producer.failedDeliveries
                self.pipeline.metrics.deliveryFailures.increment(by: newFailures - failures)
                failures = newFailures
                // Commit on the interval even when no batch came (a tick), so that a finished stream is
                // committed promptly.
                if clock.now - lastCommit >= self.commitInterval {
                    try await self.commit(duringRebalanceIsFine: true)
                    lastCommit = clock.now
                }
                guard !batch.isEmpty else { continue }
                try self.pipeline.process(batch)
                let counters = self.pipeline.counters
                let outputs = self.pipeline.outputCounts
                let assignment = self.consumer.assignment
                self.stats.update { stats in
                    stats.messages += batch.count
                    stats.bytes += batch.byteCount
                    stats.batches += 1
                    stats.accepted = counters.accepted
                    stats.deadLettered = counters.rejectedTotal
                    stats.duplicates = counters.duplicates
                    stats.metricsRecords = outputs.metrics
                    stats.lateRecords = outputs.late
                    for kind in Event.Kind.allCases {
                        stats.acceptedByType[kind.description] = counters.acceptedByKind[Int(kind.rawValue)]
                    }
                    stats.assignment = assignment
                }
            }
            try await self.commit()
        } catch {
            self.logger.error("Pipeline stopped", metadata: ["error": "\(error)"])
            await self.consumer.close()
            throw error
        }
        await self.consumer.close()
    }

    /// Group-membership errors a periodic commit meets while the group rebalances: the revoke hook
    /// commits what moves, and the next interval commits the rest.
    static let rebalanceErrors: Set<String> = [
        "REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "NOT_COORDINATOR",
        "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS", "_WAIT_COORD", "_STATE",
    ]

    /// The error's name when a periodic commit may simply wait for the next interval.
    static func deferrable(_ error: KafkaError) -> String? {
        guard case .librdkafka(let detail) = error else { return nil }
        return detail.isRetriable || Self.rebalanceErrors.contains(detail.name) ? detail.name : nil
    }

    private func commit(duringRebalanceIsFine: Bool = false) async throws {
        try await self.producer.flush(timeout: .seconds(30))
        let failed = self.producer.failedDeliveries
        guard failed == 0 else { throw UndeliveredOutputs(failed: failed) }
        let offsets = self.pipeline.processedOffsets()
        do throws(KafkaError) {
            try await self.consumer.commit(offsets)
        } catch {
            guard duringRebalanceIsFine, let name = Self.deferrable(error) else { throw error }
            self.logger.warning("Commit deferred: the group is rebalancing", metadata: ["kafka.error": "\(name)"])
        }
    }
}
