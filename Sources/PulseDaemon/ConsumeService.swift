import Logging
import PulseKafka
import ServiceLifecycle
import Synchronization

/// Running totals of what the consumer has handed over, read by reporters and (later) `/metrics`.
public final class ConsumptionStats: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var messages = 0
        public var bytes = 0
        public var batches = 0
        /// The value of the most recent message, for display.
        public var lastValue: [UInt8] = []
        public var lastPartition = TopicPartition("", -1)
        public var lastOffset: Int64 = -1
        public var assignment: [TopicPartition] = []
        public var consumerLag: Int64?
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var current: Snapshot { self.state.withLock { $0 } }

    public func update(_ body: (inout Snapshot) -> Void) {
        self.state.withLock { body(&$0) }
    }
}

/// Consumes the input topics in batches and hands each batch to `process`; offsets of a batch are stored
/// only after `process` returns, and committed in the background (at-least-once).
///
/// This is the thin first version of the pipeline: later stages (decoding, windows, detection) plug in
/// as the `process` closure.
public struct ConsumeService: Service {
    let consumer: KafkaConsumer
    let stats: ConsumptionStats
    let logger: Logger
    let process: @Sendable (ConsumerBatch) -> Void

    public init(
        consumer: KafkaConsumer,
        stats: ConsumptionStats,
        logger: Logger,
        process: @escaping @Sendable (ConsumerBatch) -> Void = { _ in }
    ) {
        self.consumer = consumer
        self.stats = stats
        self.logger = logger
        self.process = process
    }

    public func run() async throws {
        try self.consumer.subscribe()
        do {
            for try await batch in self.consumer.batches.cancelOnGracefulShutdown() {
                self.process(batch)
                let last = batch[batch.index(before: batch.endIndex)]
                let assignment = self.consumer.assignment
                self.stats.update { stats in
                    stats.messages += batch.count
                    stats.bytes += batch.byteCount
                    stats.batches += 1
                    stats.lastValue = Array(last.value.prefix(512))
                    stats.lastPartition = last.topicPartition
                    stats.lastOffset = last.offset
                    stats.assignment = assignment
                }
            }
        } catch {
            self.logger.error("Consumer failed", metadata: ["kafka.error": "\(error)"])
            await self.consumer.close()
            throw error
        }
        await self.consumer.close()
    }
}
