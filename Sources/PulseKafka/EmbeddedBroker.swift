import CRdKafka
import Logging

/// A Kafka-protocol broker in this process: librdkafka's mock cluster on 127.0.0.1.
///
/// Any Kafka client (ours, `kcat`, Python's confluent-kafka) can produce, consume and join consumer groups
/// through it over TCP. It is meant for tests, demos and benchmarks, and has limits that real Kafka does not
/// (librdkafka 2.0.2):
/// - **Memory only, about 5 MiB per partition**: older messages are dropped, and a consumer that falls
///   further behind gets "offset out of range". Use lz4 and many partitions for large pre-filled topics.
/// - **No real transactions**: aborted and open transactions are visible to `read_committed` readers, and
///   offsets sent with `send_offsets_to_transaction` are not stored.
/// - **No compaction**, and **CreateTopics from clients may time out**: create topics here, at start.
/// - **Slow group rejoin**: after a member leaves or dies the group waits about `session.timeout.ms`;
///   use a short session timeout in tests.
/// - **Ports are chosen by the operating system**; ``bootstrapServers`` tells them.
///
/// `@unchecked Sendable`: the mock cluster's API is thread-safe (each call is a request to its own
/// thread) and the pointers are never reassigned.
public final class EmbeddedBroker: @unchecked Sendable {
    /// A Kafka protocol request type, by its API key (for fault injection).
    public struct APIKey: RawRepresentable, Hashable, Sendable {
        public var rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }

        public static let produce = APIKey(rawValue: 0)
        public static let fetch = APIKey(rawValue: 1)
        public static let listOffsets = APIKey(rawValue: 2)
        public static let metadata = APIKey(rawValue: 3)
        public static let offsetCommit = APIKey(rawValue: 8)
        public static let offsetFetch = APIKey(rawValue: 9)
        public static let findCoordinator = APIKey(rawValue: 10)
        public static let joinGroup = APIKey(rawValue: 11)
        public static let heartbeat = APIKey(rawValue: 12)
        public static let syncGroup = APIKey(rawValue: 14)
        public static let initProducerID = APIKey(rawValue: 22)
        public static let addPartitionsToTxn = APIKey(rawValue: 24)
        public static let addOffsetsToTxn = APIKey(rawValue: 25)
        public static let endTxn = APIKey(rawValue: 26)
        public static let txnOffsetCommit = APIKey(rawValue: 28)
    }

    /// A Kafka protocol error code (the broker's answer to inject).
    public struct ErrorCode: RawRepresentable, Hashable, Sendable {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let notLeaderForPartition = ErrorCode(
            rawValue: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue
        )
        public static let requestTimedOut = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue)
        public static let messageTooLarge = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue)
        public static let topicAuthorizationFailed = ErrorCode(
            rawValue: RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED.rawValue
        )
        public static let producerFenced = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_PRODUCER_FENCED.rawValue)
        public static let invalidProducerEpoch = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH.rawValue)
        public static let notCoordinator = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_NOT_COORDINATOR.rawValue)
        public static let coordinatorLoadInProgress = ErrorCode(
            rawValue: RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS.rawValue
        )
    }

    /// A topic to create at start.
    public struct Topic: Sendable, Equatable {
        public var name: String
        public var partitions: Int32
        public var replicationFactor: Int32

        public init(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) {
            self.name = name
            self.partitions = partitions
            self.replicationFactor = replicationFactor
        }

        /// Parses `name:partitions` (partitions default to 1), as the `--topic` flag takes it.
        public init?(spec: String) {
            let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
            guard let name = parts.first, !name.isEmpty, parts.count <= 2 else { return nil }
            var partitions: Int32 = 1
            if parts.count == 2 {
                guard let parsed = Int32(parts[1]), parsed > 0 else { return nil }
                partitions = parsed
            }
            self.init(String(name), partitions: partitions)
        }
    }

    private let client: OpaquePointer
    private let cluster: OpaquePointer
    private let callbacks: ClientCallbacks
    /// Comma-separated `127.0.0.1:PORT` of every broker.
    public let bootstrapServers: String
    public let brokerCount: Int

    /// Starts `brokers` brokers and creates `topics`.
    public init(brokers: Int = 1, topics: [Topic] = [], logger: Logger) throws(KafkaError) {
        precondition(brokers >= 1, "a cluster needs at least one broker")
        var conf = ConfBuilder()
        // The mock cluster lives inside a client instance; this one never connects anywhere, so its
        // "no bootstrap.servers" notice is noise.
        try conf.set("log_level", "4")
        let callbacks = ClientCallbacks(logger: logger, statistics: nil)
        callbacks.install(on: conf.pointer!)
        self.callbacks = callbacks
        let client = try conf.makeClient(type: RD_KAFKA_PRODUCER)
        guard let cluster = rd_kafka_mock_cluster_new(client, Int32(brokers)) else {
            rd_kafka_destroy(client)
            throw .clientCreationFailed(reason: "cannot start the mock cluster (see librdkafka logs)")
        }
        self.client = client
        self.cluster = cluster
        self.brokerCount = brokers
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        for topic in topics {
            try self.createTopic(topic)
        }
    }

    deinit {
        rd_kafka_mock_cluster_destroy(self.cluster)
        rd_kafka_destroy(self.client)
    }

    /// The port of the first broker.
    public var port: Int {
        let first = self.bootstrapServers.split(separator: ",").first ?? ""
        return Int(first.split(separator: ":").last ?? "") ?? 0
    }

    /// Creates a topic (replication is capped at the broker count).
    public func createTopic(_ topic: Topic) throws(KafkaError) {
        let code = rd_kafka_mock_topic_create(
            self.cluster,
            topic.name,
            topic.partitions,
            min(topic.replicationFactor, Int32(self.brokerCount))
        )
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(code, text: "create topic \(topic.name)") }
    }

    /// Makes the next `errors.count` requests of type `apiKey` fail with these errors, in order.
    public func pushRequestErrors(_ apiKey: APIKey, _ errors: [ErrorCode]) {
        var codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        rd_kafka_mock_push_request_errors_array(self.cluster, apiKey.rawValue, codes.count, &codes)
    }

    /// Drops the injected errors still pending for `apiKey`.
    public func clearRequestErrors(_ apiKey: APIKey) {
        rd_kafka_mock_clear_request_errors(self.cluster, apiKey.rawValue)
    }

    /// Makes every request for `topic` fail with `error` (`nil` clears it).
    public func setTopicError(_ topic: String, _ error: ErrorCode?) {
        let code = rd_kafka_resp_err_t(rawValue: error?.rawValue ?? 0)
        rd_kafka_mock_topic_set_error(self.cluster, topic, code)
    }

    /// Disconnects a broker and refuses new connections to it (`id` counts from 1).
    public func setBrokerDown(_ id: Int32) throws(KafkaError) {
        let code = rd_kafka_mock_broker_set_down(self.cluster, id)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(code) }
    }

    /// Brings a broker back.
    public func setBrokerUp(_ id: Int32) throws(KafkaError) {
        let code = rd_kafka_mock_broker_set_up(self.cluster, id)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(code) }
    }

    /// Adds `rtt` of latency to a broker's responses.
    public func setBrokerRTT(_ id: Int32, _ rtt: Duration) throws(KafkaError) {
        let code = rd_kafka_mock_broker_set_rtt(self.cluster, id, Int32(rtt.milliseconds))
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(code) }
    }

    /// Makes broker `id` the coordinator of consumer group `group`.
    public func setGroupCoordinator(_ group: String, broker id: Int32) throws(KafkaError) {
        let code = rd_kafka_mock_coordinator_set(self.cluster, "group", group, id)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(code) }
    }

    /// Moves the leadership of one partition to broker `id`.
    public func setPartitionLeader(_ topic: String, _ partition: Int32, broker id: Int32) throws(KafkaError) {
        let code = rd_kafka_mock_partition_set_leader(self.cluster, topic, partition, id)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .code(code) }
    }
}
