import CRdKafka
import Logging

/// Reads one partition from its beginning to its end as of the call, outside any consumer group: what a
/// changelog restore needs. Blocking by design; it runs inside a rebalance callback, before the restored
/// partition is consumed.
///
/// Uses `isolation.level=read_committed`, so on a real broker records of aborted or open transactions
/// are skipped (the embedded broker cannot hide them, see ``EmbeddedBroker``).
public final class PartitionReader: @unchecked Sendable {  // one caller at a time: the consumer thread
    /// One record, copied out of librdkafka's buffers.
    public struct Record: Sendable {
        public var offset: Int64
        public var key: [UInt8]?
        /// `nil` for a tombstone.
        public var value: [UInt8]?
    }

    private let handle: OpaquePointer
    private let callbacks: ClientCallbacks
    private let logger: Logger

    public init(client: KafkaClientConfiguration, logger: Logger) throws(KafkaError) {
        var client = client
        client.statisticsInterval = nil
        client.clientID += "-restore"
        var conf = ConfBuilder()
        try conf.set(client.properties)
        try conf.set([
            // librdkafka 2.0 refuses assign() without a group; this one never joins (no subscribe) and
            // never commits.
            ("group.id", "\(client.clientID)-reader"),
            ("isolation.level", "read_committed"),
            ("enable.partition.eof", "true"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("fetch.wait.max.ms", "10"),
        ])
        let callbacks = ClientCallbacks(logger: logger, statistics: nil)
        callbacks.install(on: conf.pointer!)
        self.handle = try conf.makeClient(type: RD_KAFKA_CONSUMER)
        rd_kafka_poll_set_consumer(self.handle)
        self.callbacks = callbacks
        self.logger = logger
    }

    deinit {
        _ = rd_kafka_assign(self.handle, nil)
        rd_kafka_destroy_flags(self.handle, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
    }

    /// The partition's low and high watermarks.
    public func watermarks(_ partition: TopicPartition, timeout: Duration = .seconds(10)) throws(KafkaError) -> (
        low: Int64, high: Int64
    ) {
        try queryWatermarks(self.handle, partition, timeout: timeout)
    }

    /// Calls `body` with every record of `partition` from the first retained one to the end seen when the
    /// call began.
    ///
    /// - Returns: the number of records read.
    /// - Throws: when the partition cannot be read within `timeout`.
    @discardableResult
    public func readAll(
        _ partition: TopicPartition,
        timeout: Duration = .seconds(60),
        _ body: (Record) -> Void
    ) throws(KafkaError) -> Int {
        let (low, high) = try self.watermarks(partition)
        guard high > low else { return 0 }
        let list = PartitionList([TopicPartitionOffset(partition, offset: Int64(RD_KAFKA_OFFSET_BEGINNING))])
        let assigned = rd_kafka_assign(self.handle, list.pointer)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(assigned) }
        defer { _ = rd_kafka_assign(self.handle, nil) }
        let deadline = ContinuousClock.now + timeout
        var count = 0
        while ContinuousClock.now < deadline {
            guard let message = rd_kafka_consumer_poll(self.handle, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            let pointee = message.pointee
            if pointee.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                return count
            }
            guard pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                // Transient (the deadline bounds them); a real failure shows as the timeout below.
                self.logger.warning(
                    "Partition read error",
                    metadata: ["kafka.error": "\(KafkaError.code(pointee.err))"]
                )
                continue
            }
            count += 1
            let key: [UInt8]? =
                pointee.key.map { Array(UnsafeRawBufferPointer(start: $0, count: pointee.key_len)) }
            let value: [UInt8]? =
                pointee.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: pointee.len)) }
            body(Record(offset: pointee.offset, key: key, value: value))
            if pointee.offset + 1 >= high { return count }
        }
        throw .code(RD_KAFKA_RESP_ERR__TIMED_OUT, text: "reading \(partition) took longer than \(timeout)")
    }
}
