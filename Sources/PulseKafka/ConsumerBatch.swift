import CRdKafka

#if canImport(Glibc)
import Glibc
#endif

/// One message of a ``ConsumerBatch``: a cheap view into the batch's storage.
public struct ConsumerMessage: Sendable {
    private let storage: ConsumerBatch.Storage
    private let index: Int

    init(storage: ConsumerBatch.Storage, index: Int) {
        self.storage = storage
        self.index = index
    }

    private var record: ConsumerBatch.Record { self.storage.records[self.index] }

    public var topic: String { self.storage.topics[Int(self.record.topicIndex)] }
    public var partition: Int32 { self.record.partition }
    public var offset: Int64 { self.record.offset }
    public var topicPartition: TopicPartition { TopicPartition(self.topic, self.partition) }
    /// The message timestamp in epoch milliseconds, when the broker or producer set one.
    public var timestamp: Int64? { self.record.timestamp >= 0 ? self.record.timestamp : nil }

    /// The key bytes, or `nil` for a message without a key.
    public var key: ArraySlice<UInt8>? {
        let record = self.record
        guard record.keyLength >= 0 else { return nil }
        return self.storage.bytes[record.keyStart..<(record.keyStart + Int(record.keyLength))]
    }

    /// The value bytes (empty for a tombstone or an empty payload).
    public var value: ArraySlice<UInt8> {
        let record = self.record
        return self.storage.bytes[record.valueStart..<(record.valueStart + Swift.max(0, record.valueLength))]
    }

    /// Whether the message has a null value (a compaction tombstone), as opposed to an empty one.
    public var isTombstone: Bool { self.record.valueLength < 0 }

    /// Calls `body` with the value bytes, without retaining or copying anything.
    public func withValueBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let record = self.record
        return try self.storage.bytes.withUnsafeBytes { all in
            try body(
                UnsafeRawBufferPointer(
                    rebasing: all[record.valueStart..<(record.valueStart + Swift.max(0, record.valueLength))]
                )
            )
        }
    }

    /// The message headers, in wire order.
    public var headers: [KafkaHeader] {
        let record = self.record
        guard record.headerCount > 0 else { return [] }
        let start = Int(record.headerStart)
        return self.storage.headers[start..<(start + Int(record.headerCount))].map { header in
            let name = String(
                decoding: self.storage.bytes[header.nameStart..<(header.nameStart + header.nameLength)],
                as: UTF8.self
            )
            let value =
                header.valueLength >= 0
                ? Array(self.storage.bytes[header.valueStart..<(header.valueStart + header.valueLength)]) : nil
            return KafkaHeader(name: name, value: value)
        }
    }
}

/// A batch of messages from one `rd_kafka_consume_batch_queue` call, copied into one contiguous buffer.
///
/// Copying a whole batch at once costs two allocations per batch instead of several per message, and no
/// librdkafka pointer outlives the poll that returned it.
public struct ConsumerBatch: RandomAccessCollection, Sendable {
    struct Record: Sendable {
        var topicIndex: UInt16
        var partition: Int32
        var offset: Int64
        var timestamp: Int64
        var keyStart: Int
        var keyLength: Int32  // -1: no key
        var headerStart: Int32
        var headerCount: Int32
        var valueStart: Int
        var valueLength: Int  // -1: null value (tombstone)
    }

    struct Header: Sendable {
        var nameStart: Int
        var nameLength: Int
        var valueStart: Int
        var valueLength: Int  // -1: no value
    }

    /// Immutable once built. `@unchecked Sendable`: never mutated after `ConsumerBatch.init` returns.
    final class Storage: @unchecked Sendable {
        var topics: [String] = []
        var bytes: [UInt8] = []
        var records: [Record] = []
        var headers: [Header] = []
    }

    let storage: Storage

    init(storage: Storage) {
        self.storage = storage
    }

    /// An empty batch.
    public init() {
        self.storage = Storage()
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { self.storage.records.count }
    public subscript(position: Int) -> ConsumerMessage { ConsumerMessage(storage: self.storage, index: position) }

    /// Total payload bytes (keys, values and headers) held by the batch.
    public var byteCount: Int { self.storage.bytes.count }

    /// For each partition in the batch, the offset after its last message: what to commit once the batch
    /// has been processed.
    public var nextOffsets: [TopicPartitionOffset] {
        var latest: [TopicPartition: Int64] = [:]
        for record in self.storage.records {
            let key = TopicPartition(self.storage.topics[Int(record.topicIndex)], record.partition)
            latest[key] = Swift.max(latest[key] ?? -1, record.offset + 1)
        }
        return latest.map { TopicPartitionOffset($0.key, offset: $0.value) }.sorted {
            $0.topicPartition < $1.topicPartition
        }
    }
}

extension ConsumerBatch {
    /// Copies the successful messages of `messages` (with their headers if `headers`) and destroys every
    /// message.
    ///
    /// - Returns: the batch and the errors carried by error messages (partition EOF is not an error).
    static func copying(
        _ messages: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>,
        count: Int,
        headers copiesHeaders: Bool
    ) -> (ConsumerBatch, [KafkaError]) {
        let storage = Storage()
        var errors: [KafkaError] = []
        defer {
            for index in 0..<count { rd_kafka_message_destroy(messages[index]) }
        }

        var total = 0
        for index in 0..<count {
            let message = messages[index]!.pointee
            total += message.len + message.key_len
        }
        storage.bytes.reserveCapacity(total)
        storage.records.reserveCapacity(count)

        var lastTopic: OpaquePointer? = nil
        var lastTopicIndex: UInt16 = 0
        for index in 0..<count {
            let pointer = messages[index]!
            let message = pointer.pointee
            guard message.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                if message.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    let text = message.payload.map {
                        String(decoding: UnsafeRawBufferPointer(start: $0, count: message.len), as: UTF8.self)
                    }
                    errors.append(.code(message.err, text: text))
                }
                continue
            }
            if message.rkt != lastTopic {
                lastTopic = message.rkt
                let name = String(cString: rd_kafka_topic_name(message.rkt))
                if let existing = storage.topics.firstIndex(of: name) {
                    lastTopicIndex = UInt16(existing)
                } else {
                    storage.topics.append(name)
                    lastTopicIndex = UInt16(storage.topics.count - 1)
                }
            }
            var record = Record(
                topicIndex: lastTopicIndex,
                partition: message.partition,
                offset: message.offset,
                timestamp: rd_kafka_message_timestamp(pointer, nil),
                keyStart: storage.bytes.count,
                keyLength: -1,
                headerStart: Int32(storage.headers.count),
                headerCount: 0,
                valueStart: 0,
                valueLength: message.len
            )
            if let key = message.key {
                storage.bytes.append(contentsOf: UnsafeRawBufferPointer(start: key, count: message.key_len))
                record.keyLength = Int32(message.key_len)
            }
            record.valueStart = storage.bytes.count
            if let payload = message.payload {
                storage.bytes.append(contentsOf: UnsafeRawBufferPointer(start: payload, count: message.len))
            } else {
                record.valueLength = -1
            }
            var headers: OpaquePointer? = nil
            if copiesHeaders, rd_kafka_message_headers(pointer, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers {
                var headerIndex = 0
                var name: UnsafePointer<CChar>? = nil
                var value: UnsafeRawPointer? = nil
                var size = 0
                while rd_kafka_header_get_all(headers, headerIndex, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR
                {
                    let nameLength = Int(strlen(name!))
                    let nameStart = storage.bytes.count
                    storage.bytes.append(contentsOf: UnsafeRawBufferPointer(start: name!, count: nameLength))
                    let valueStart = storage.bytes.count
                    var valueLength = -1
                    if let value {
                        storage.bytes.append(contentsOf: UnsafeRawBufferPointer(start: value, count: size))
                        valueLength = size
                    }
                    storage.headers.append(
                        Header(
                            nameStart: nameStart,
                            nameLength: nameLength,
                            valueStart: valueStart,
                            valueLength: valueLength
                        )
                    )
                    headerIndex += 1
                }
                record.headerCount = Int32(headerIndex)
            }
            storage.records.append(record)
        }
        return (ConsumerBatch(storage: storage), errors)
    }
}
