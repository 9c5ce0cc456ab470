import CoreMetrics
import Logging
import PulseCore
import PulseKafka
import Synchronization

/// The per-partition ingestion of the running daemon: decode, validate, deduplicate, dead-letter.
///
/// State (one ``Ingestor`` per input partition, the offsets processed so far) sits behind one `Mutex`:
/// the pipeline task uses it per batch and the rebalance hooks between batches.
public final class IngestPipeline: Sendable {
    /// Largest dead-letter value sent as is; larger originals are truncated (with `crowdpulse.truncated`).
    /// librdkafka refuses messages above `message.max.bytes` (1 000 000 by default) before they leave.
    public static let maxDeadLetterBytes = 900_000

    private struct State {
        var ingestors: [TopicPartition: Ingestor] = [:]
        /// Next offset to commit per partition (everything before it is processed and its outputs sent).
        var processed: [TopicPartition: Int64] = [:]
        var retired = Ingestor.Counters()
    }

    private let state = Mutex(State())
    let producer: KafkaProducer
    let topics: TopicNames
    let decoder: EventDecoder
    let dedup: Deduplicator.Configuration
    let metrics: IngestMetrics
    let logger: Logger
    let nowMillis: @Sendable () -> Int64
    let onEvent: @Sendable (Event, TopicPartition) -> Void

    public init(
        producer: KafkaProducer,
        topics: TopicNames,
        decoder: EventDecoder = EventDecoder(),
        dedup: Deduplicator.Configuration = Deduplicator.Configuration(),
        metrics: IngestMetrics,
        logger: Logger,
        nowMillis: @escaping @Sendable () -> Int64 = WallClock.nowMillis,
        onEvent: @escaping @Sendable (Event, TopicPartition) -> Void = { _, _ in }
    ) {
        self.producer = producer
        self.topics = topics
        self.decoder = decoder
        self.dedup = dedup
        self.metrics = metrics
        self.logger = logger
        self.nowMillis = nowMillis
        self.onEvent = onEvent
    }

    /// Totals over every partition this pipeline has processed.
    public var counters: Ingestor.Counters {
        self.state.withLock { state in
            var total = state.retired
            for ingestor in state.ingestors.values { total.add(ingestor.counters) }
            return total
        }
    }

    /// Processes one batch: accepted events go to `onEvent`; rejected records are sent to the dead-letter
    /// topic (delivery is confirmed before their offsets are committed, see ``commitOffsets(for:)``).
    ///
    /// - Throws: when a dead letter cannot even be queued (the producer is broken).
    public func process(_ batch: ConsumerBatch) throws(KafkaError) {
        let now = self.nowMillis()
        // Counted per batch: one metrics call per counter, not per record.
        var accepted = 0
        var duplicates = 0
        var tombstones = 0
        defer {
            self.metrics.records.increment(by: batch.count)
            self.metrics.accepted.increment(by: accepted)
            self.metrics.duplicates.increment(by: duplicates)
            self.metrics.tombstones.increment(by: tombstones)
        }
        try self.state.withLock { (state: inout State) throws(KafkaError) in
            for message in batch {
                let partition = message.topicPartition
                var ingestor =
                    state.ingestors.removeValue(forKey: partition)
                    ?? Ingestor(decoder: self.decoder, deduplicator: Deduplicator(configuration: self.dedup))
                defer { state.ingestors[partition] = ingestor }
                let outcome: Ingestor.Outcome
                if message.isTombstone {
                    outcome = ingestor.ingest(nil, nowMillis: now)
                } else {
                    outcome = message.withValueBytes { ingestor.ingest($0, nowMillis: now) }
                }
                switch outcome {
                case .accepted(let event):
                    accepted += 1
                    self.onEvent(event, partition)
                case .duplicate:
                    duplicates += 1
                case .tombstone:
                    tombstones += 1
                case .rejected(let rejection):
                    self.metrics.deadLetter(rejection.reason).increment()
                    try self.sendDeadLetter(message, rejection)
                }
                state.processed[partition] = message.offset + 1
            }
        }
    }

    private func sendDeadLetter(_ message: ConsumerMessage, _ rejection: Rejection) throws(KafkaError) {
        var value = Array(message.value)
        var truncated = false
        if value.count > Self.maxDeadLetterBytes {
            value.removeSubrange(Self.maxDeadLetterBytes...)
            truncated = true
            self.metrics.deadLettersTruncated.increment()
        }
        let headers = DeadLetter.headers(
            for: rejection,
            sourceTopic: message.topic,
            partition: message.partition,
            offset: message.offset,
            truncated: truncated
        ).map { KafkaHeader(name: $0.name, string: $0.value) }
        let record = ProducerRecord(
            topic: self.topics.deadLetter,
            key: message.key.map(Array.init),
            value: value,
            headers: headers
        )
        do {
            try self.producer.send(record)
        } catch {
            // A broker's smaller message.max.bytes (configured through pass-through) still has to fit: keep
            // the first 64 KiB and say so.
            guard error.detail?.name == "MSG_SIZE_TOO_LARGE" || error.detail?.name == "_MSG_SIZE_TOO_LARGE" else {
                throw error
            }
            var smaller = record
            smaller.value = Array(value.prefix(65_536))
            if !truncated {
                smaller.headers.append(KafkaHeader(name: DeadLetter.truncatedHeader, string: "true"))
                self.metrics.deadLettersTruncated.increment()
            }
            try self.producer.send(smaller)
        }
    }

    /// The offsets to commit for `partitions` (all when `nil`) once outputs are delivered.
    public func processedOffsets(for partitions: [TopicPartition]? = nil) -> [TopicPartitionOffset] {
        self.state.withLock { state in
            state.processed
                .filter { partitions?.contains($0.key) ?? true }
                .map { TopicPartitionOffset($0.key, offset: $0.value) }
                .sorted { $0.topicPartition < $1.topicPartition }
        }
    }

    /// Forgets partitions that moved to another member (their dedup state goes with them).
    public func drop(_ partitions: [TopicPartition]) {
        self.state.withLock { state in
            for partition in partitions {
                if let ingestor = state.ingestors.removeValue(forKey: partition) {
                    state.retired.add(ingestor.counters)
                }
                state.processed.removeValue(forKey: partition)
            }
        }
    }
}
