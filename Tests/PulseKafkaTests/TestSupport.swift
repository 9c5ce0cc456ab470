import Foundation
import Logging
import PulseKafka
import PulseTestSupport
import Synchronization

let testLogger = quietTestLogger()

/// Thread-safe accumulator for values reported from consumer threads and hooks.
final class Collector<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])

    func append(_ value: Value) { self.values.withLock { $0.append(value) } }
    func append(contentsOf values: [Value]) { self.values.withLock { $0.append(contentsOf: values) } }
    var all: [Value] { self.values.withLock { $0 } }
    var count: Int { self.values.withLock { $0.count } }
}

/// A unique name per call, so tests sharing a process never share a group or topic by accident.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8))"
}

func consumerConfiguration(
    _ broker: EmbeddedBroker,
    group: String,
    topics: [String],
    commitMode: KafkaConsumer.CommitMode = .manual,
    maxBatchSize: Int = 4096
) -> KafkaConsumer.Configuration {
    KafkaConsumer.Configuration(
        client: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers, clientID: "test-consumer"),
        groupID: group,
        topics: topics,
        commitMode: commitMode,
        // The embedded broker waits about a session timeout before it rebalances: keep it short.
        sessionTimeout: .seconds(6),
        maxBatchSize: maxBatchSize
    )
}

func producerConfiguration(_ broker: EmbeddedBroker, transactionalID: String? = nil) -> KafkaProducer.Configuration {
    KafkaProducer.Configuration(
        client: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers, clientID: "test-producer"),
        transactionalID: transactionalID,
        linger: .milliseconds(2)
    )
}

/// Runs a consumer's batch loop in a task, collecting every message, until the consumer is closed.
func startCollecting(_ consumer: KafkaConsumer, into collector: Collector<ConsumedRecord>) -> Task<Void, any Error> {
    Task {
        while let batch = try await consumer.nextBatch() {
            collector.append(contentsOf: batch.map(ConsumedRecord.init))
        }
    }
}

/// A plain copy of a consumed message, for assertions after the batch is gone.
struct ConsumedRecord: Sendable, Equatable {
    var topicPartition: TopicPartition
    var offset: Int64
    var key: String?
    var value: String
    var headers: [KafkaHeader]

    init(_ message: ConsumerMessage) {
        self.topicPartition = message.topicPartition
        self.offset = message.offset
        self.key = message.key.map { String(decoding: $0, as: UTF8.self) }
        self.value = String(decoding: message.value, as: UTF8.self)
        self.headers = message.headers
    }
}

/// One value behind a lock, shareable with escaping closures.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { self.value.withLock { body(&$0) } }
}
