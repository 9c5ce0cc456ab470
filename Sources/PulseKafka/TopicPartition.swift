import CRdKafka

/// One partition of one topic.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible, Comparable {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(self.topic)[\(self.partition)]" }

    public static func < (lhs: TopicPartition, rhs: TopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// A partition with an offset: a commit position (the *next* offset to read) or a stored position.
public struct TopicPartitionOffset: Hashable, Sendable, CustomStringConvertible {
    public var topicPartition: TopicPartition
    public var offset: Int64

    public init(_ topicPartition: TopicPartition, offset: Int64) {
        self.topicPartition = topicPartition
        self.offset = offset
    }

    public init(_ topic: String, _ partition: Int32, offset: Int64) {
        self.init(TopicPartition(topic, partition), offset: offset)
    }

    public var description: String { "\(self.topicPartition)@\(self.offset)" }
}

/// A Kafka record header. Values are raw bytes; `nil` is a header without a value.
public struct KafkaHeader: Hashable, Sendable {
    public var name: String
    public var value: [UInt8]?

    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    public init(name: String, string: String) {
        self.init(name: name, value: Array(string.utf8))
    }

    /// The value decoded as UTF-8 (lossy), or `nil` for a header without a value.
    public var stringValue: String? {
        self.value.map { String(decoding: $0, as: UTF8.self) }
    }
}

/// Owns an `rd_kafka_topic_partition_list_t` built from Swift values, destroyed with the value.
struct PartitionList: ~Copyable {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(_ partitions: [TopicPartition]) {
        self.pointer = rd_kafka_topic_partition_list_new(Int32(partitions.count))
        for partition in partitions {
            rd_kafka_topic_partition_list_add(self.pointer, partition.topic, partition.partition)
        }
    }

    init(_ offsets: [TopicPartitionOffset]) {
        self.pointer = rd_kafka_topic_partition_list_new(Int32(offsets.count))
        for item in offsets {
            let element = rd_kafka_topic_partition_list_add(
                self.pointer,
                item.topicPartition.topic,
                item.topicPartition.partition
            )!
            element.pointee.offset = item.offset
        }
    }

    init(taking pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        self.pointer = pointer
    }

    deinit { rd_kafka_topic_partition_list_destroy(self.pointer) }

    var offsets: [TopicPartitionOffset] { Self.offsets(of: self.pointer) }

    /// The first per-partition error in the list, if any.
    var firstError: KafkaError? { Self.firstError(of: self.pointer) }

    static func partitions(of list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
        self.offsets(of: list).map(\.topicPartition)
    }

    static func offsets(of list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartitionOffset] {
        let count = Int(list.pointee.cnt)
        var result: [TopicPartitionOffset] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            let element = list.pointee.elems[index]
            result.append(
                TopicPartitionOffset(String(cString: element.topic), element.partition, offset: element.offset)
            )
        }
        return result
    }

    static func firstError(of list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> KafkaError? {
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            if element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let partition = "\(String(cString: element.topic))[\(element.partition)]"
                return .code(element.err, text: "\(partition): \(String(cString: rd_kafka_err2str(element.err)))")
            }
        }
        return nil
    }
}

/// A partition's low and high watermarks, asked from its leader through any client handle.
func queryWatermarks(_ handle: OpaquePointer, _ partition: TopicPartition, timeout: Duration) throws(KafkaError) -> (
    low: Int64, high: Int64
) {
    var low: Int64 = 0
    var high: Int64 = 0
    let result = rd_kafka_query_watermark_offsets(
        handle,
        partition.topic,
        partition.partition,
        &low,
        &high,
        timeout.timeoutMilliseconds
    )
    guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(result) }
    return (low, high)
}
