import CRdKafka
import Logging

/// Creates and describes topics.
///
/// `@unchecked Sendable`: the `rd_kafka_t` handle is thread-safe and never reassigned.
public final class KafkaAdmin: @unchecked Sendable {
    /// A topic to create.
    public struct NewTopic: Sendable, Equatable {
        public var name: String
        public var partitions: Int32
        /// `-1` lets the broker use its default.
        public var replicationFactor: Int32
        /// Topic configs, e.g. `["cleanup.policy": "compact"]` for changelogs.
        public var configs: [String: String]

        public init(name: String, partitions: Int32, replicationFactor: Int32 = -1, configs: [String: String] = [:]) {
            self.name = name
            self.partitions = partitions
            self.replicationFactor = replicationFactor
            self.configs = configs
        }

        /// A compacted topic, as changelogs need.
        public static func compacted(_ name: String, partitions: Int32, replicationFactor: Int32 = -1) -> NewTopic {
            NewTopic(
                name: name,
                partitions: partitions,
                replicationFactor: replicationFactor,
                configs: ["cleanup.policy": "compact"]
            )
        }
    }

    /// What the cluster says about one topic.
    public struct TopicDescription: Sendable, Equatable {
        public struct Partition: Sendable, Equatable {
            public var id: Int32
            public var leader: Int32
            public var replicas: [Int32]
        }

        public var name: String
        public var partitions: [Partition]
    }

    private let handle: OpaquePointer
    private let callbacks: ClientCallbacks

    public init(configuration: KafkaClientConfiguration, logger: Logger) throws(KafkaError) {
        var conf = ConfBuilder()
        try conf.set(configuration.properties)
        let callbacks = ClientCallbacks(logger: logger, statistics: nil)
        callbacks.install(on: conf.pointer!)
        self.callbacks = callbacks
        self.handle = try conf.makeClient(type: RD_KAFKA_PRODUCER)
    }

    deinit { rd_kafka_destroy(self.handle) }

    /// Creates `topics` and returns, per topic, `nil` on success or the error.
    ///
    /// - Parameter ignoreExisting: report `TOPIC_ALREADY_EXISTS` as success.
    /// - Throws: when the request as a whole fails (invalid argument, timeout).
    public func createTopics(
        _ topics: [NewTopic],
        ignoreExisting: Bool = true,
        timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [String: KafkaError?] {
        let handle = SendableHandle(pointer: self.handle)
        let result = await offloadBlocking {
            Self.createTopicsBlocking(handle.pointer, topics, ignoreExisting, timeout)
        }
        return try result.get()
    }

    private static func createTopicsBlocking(
        _ handle: OpaquePointer,
        _ topics: [NewTopic],
        _ ignoreExisting: Bool,
        _ timeout: Duration
    ) -> Result<[String: KafkaError?], KafkaError> {
        var newTopics: [OpaquePointer?] = []
        defer { newTopics.forEach { rd_kafka_NewTopic_destroy($0) } }
        var errorText = [CChar](repeating: 0, count: 512)
        for topic in topics {
            guard
                let newTopic = rd_kafka_NewTopic_new(
                    topic.name,
                    topic.partitions,
                    topic.replicationFactor,
                    &errorText,
                    errorText.count
                )
            else {
                return .failure(.invalidState(reason: "topic \(topic.name): \(String(nulTerminated: errorText))"))
            }
            newTopics.append(newTopic)
            for (key, value) in topic.configs.sorted(by: { $0.key < $1.key }) {
                let code = rd_kafka_NewTopic_set_config(newTopic, key, value)
                if code != RD_KAFKA_RESP_ERR_NO_ERROR { return .failure(.code(code)) }
            }
        }
        let queue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeout.timeoutMilliseconds, &errorText, errorText.count)
        _ = rd_kafka_AdminOptions_set_operation_timeout(
            options,
            timeout.timeoutMilliseconds,
            &errorText,
            errorText.count
        )
        newTopics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(handle, buffer.baseAddress, buffer.count, options, queue)
        }
        // Wait a little longer than the request timeout so that librdkafka reports the timeout itself.
        guard let event = rd_kafka_queue_poll(queue, timeout.timeoutMilliseconds + 5000) else {
            return .failure(.code(RD_KAFKA_RESP_ERR__TIMED_OUT, text: "no CreateTopics result"))
        }
        defer { rd_kafka_event_destroy(event) }
        let code = rd_kafka_event_error(event)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return .failure(.code(code, text: rd_kafka_event_error_string(event).map { String(cString: $0) }))
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            return .failure(.invalidState(reason: "unexpected admin event"))
        }
        var count = 0
        let results = rd_kafka_CreateTopics_result_topics(result, &count)
        var outcome: [String: KafkaError?] = [:]
        for index in 0..<count {
            let topicResult = results![index]
            let name = String(cString: rd_kafka_topic_result_name(topicResult))
            let code = rd_kafka_topic_result_error(topicResult)
            if code == RD_KAFKA_RESP_ERR_NO_ERROR || (ignoreExisting && code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            {
                outcome[name] = .some(nil)
            } else {
                let text = rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) }
                outcome[name] = .some(.code(code, text: text))
            }
        }
        return .success(outcome)
    }

    /// Describes topics from cluster metadata: partitions, leaders and replicas.
    ///
    /// - Throws: `UNKNOWN_TOPIC_OR_PART` (or another broker error) for a topic that cannot be described.
    public func describeTopics(_ names: [String], timeout: Duration = .seconds(10)) async throws(KafkaError)
        -> [TopicDescription]
    {
        let handle = SendableHandle(pointer: self.handle)
        let result = await offloadBlocking { () -> Result<[TopicDescription], KafkaError> in
            var descriptions: [TopicDescription] = []
            for name in names {
                switch Self.describe(handle.pointer, name, timeout) {
                case .success(let description): descriptions.append(description)
                case .failure(let error): return .failure(error)
                }
            }
            return .success(descriptions)
        }
        return try result.get()
    }

    private static func describe(_ handle: OpaquePointer, _ name: String, _ timeout: Duration) -> Result<
        TopicDescription, KafkaError
    > {
        let topic = rd_kafka_topic_new(handle, name, nil)
        defer { rd_kafka_topic_destroy(topic) }
        var metadata: UnsafePointer<rd_kafka_metadata>? = nil
        let code = rd_kafka_metadata(handle, 0, topic, &metadata, timeout.timeoutMilliseconds)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { return .failure(.code(code)) }
        defer { rd_kafka_metadata_destroy(metadata) }
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let entry = metadata.pointee.topics[index]
            guard String(cString: entry.topic) == name else { continue }
            guard entry.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                return .failure(.code(entry.err, text: "topic \(name)"))
            }
            var partitions: [TopicDescription.Partition] = []
            for p in 0..<Int(entry.partition_cnt) {
                let partition = entry.partitions[p]
                let replicas = (0..<Int(partition.replica_cnt)).map { partition.replicas[$0] }
                partitions.append(.init(id: partition.id, leader: partition.leader, replicas: replicas))
            }
            return .success(TopicDescription(name: name, partitions: partitions.sorted { $0.id < $1.id }))
        }
        return .failure(.code(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, text: "topic \(name)"))
    }
}
