import Foundation

/// The figures we use from librdkafka's statistics JSON (`statistics.interval.ms`).
///
/// See librdkafka's STATISTICS.md: times are in microseconds; `consumer_lag` is `-1` when unknown, and
/// partition `-1` is the internal "unassigned" partition, which we skip.
public struct KafkaStatistics: Sendable, Equatable {
    /// Round-trip time of one broker connection.
    public struct BrokerRTT: Sendable, Equatable {
        public var name: String
        public var nodeID: Int
        public var state: String
        /// Average and 99th percentile over the last interval, in seconds.
        public var average: Double
        public var p99: Double
    }

    /// Consumer position and lag of one assigned partition.
    public struct PartitionLag: Sendable, Equatable {
        public var topicPartition: TopicPartition
        /// Messages between the end of the partition and the application's position (what it has been
        /// handed): how far behind processing is. `nil` when unknown.
        public var consumerLag: Int64?
        /// librdkafka's `consumer_lag`: the end of the partition minus the *committed* offset (`nil` before
        /// the first commit).
        public var committedLag: Int64?
        public var highWatermark: Int64
        public var committedOffset: Int64
        /// Messages fetched but not yet handed to the application.
        public var queuedMessages: Int64
    }

    /// The client instance name, e.g. `crowdpulse#consumer-1`.
    public var clientName: String
    public var brokers: [BrokerRTT]
    public var partitions: [PartitionLag]

    /// Sum of known lags across assigned partitions.
    public var totalConsumerLag: Int64 {
        self.partitions.reduce(0) { $0 + ($1.consumerLag ?? 0) }
    }

    /// Parses one statistics document.
    public init(json: [UInt8]) throws {
        let raw = try JSONDecoder().decode(Raw.self, from: Data(json))
        self.clientName = raw.name
        self.brokers = (raw.brokers ?? [:]).values
            // Skip bootstrap placeholders (node -1) and logical connections such as the group coordinator,
            // which duplicate a real broker.
            .filter { $0.nodeid >= 0 && $0.source != "logical" && $0.name != "GroupCoordinator" }
            .map {
                BrokerRTT(
                    name: $0.name,
                    nodeID: $0.nodeid,
                    state: $0.state,
                    average: Double($0.rtt?.avg ?? 0) / 1_000_000,
                    p99: Double($0.rtt?.p99 ?? 0) / 1_000_000
                )
            }
            .sorted { $0.nodeID < $1.nodeID }
        var partitions: [PartitionLag] = []
        for (topic, topicStats) in raw.topics ?? [:] {
            for (_, partition) in topicStats.partitions ?? [:] where partition.partition >= 0 {
                // Only partitions this member consumes carry a meaningful lag.
                guard partition.desired == true else {
                    continue
                }
                partitions.append(
                    PartitionLag(
                        topicPartition: TopicPartition(topic, partition.partition),
                        consumerLag: Self.lag(partition),
                        committedLag: partition.consumer_lag.flatMap { $0 >= 0 ? $0 : nil },
                        highWatermark: partition.hi_offset ?? -1,
                        committedOffset: partition.committed_offset ?? -1,
                        queuedMessages: partition.fetchq_cnt ?? 0
                    )
                )
            }
        }
        self.partitions = partitions.sorted { $0.topicPartition < $1.topicPartition }
    }

    /// The end of the partition (the last stable offset, which equals the high watermark unless
    /// transactions are open) minus the application position.
    private static func lag(_ partition: Raw.Partition) -> Int64? {
        let end = partition.ls_offset.flatMap { $0 >= 0 ? $0 : nil } ?? partition.hi_offset ?? -1
        if let position = partition.app_offset, position >= 0, end >= 0 {
            return Swift.max(0, end - position)
        }
        return partition.consumer_lag.flatMap { $0 >= 0 ? $0 : nil }
    }

    private struct Raw: Decodable {
        var name: String
        var brokers: [String: Broker]?
        var topics: [String: Topic]?

        struct Broker: Decodable {
            var name: String
            var nodeid: Int
            var state: String
            var source: String?
            var rtt: Window?
        }

        struct Window: Decodable {
            var avg: Int64
            var p99: Int64
        }

        struct Topic: Decodable {
            var partitions: [String: Partition]?
        }

        struct Partition: Decodable {
            var partition: Int32
            var desired: Bool?
            var consumer_lag: Int64?
            var hi_offset: Int64?
            var committed_offset: Int64?
            var app_offset: Int64?
            var ls_offset: Int64?
            var fetchq_cnt: Int64?
        }
    }
}
