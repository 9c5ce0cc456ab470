import PulseKafka
import PulseTestSupport
import Testing

/// What librdkafka 2.0.2's embedded broker supports of transactions: the client-side protocol (init,
/// begin, AddPartitions, AddOffsets, EndTxn) and fencing. It does *not* hide aborted records from
/// `read_committed` readers, nor store offsets sent in a transaction, so those are not claimed here.
@Suite("Transactions")
struct TransactionTests {
    @Test(
        "init, begin, produce, send offsets, commit; then abort; committed records are visible",
        .timeLimit(.minutes(1))
    )
    func fullTransactionalSequence() async throws {
        let broker = try EmbeddedBroker(
            topics: [.init("txn-out", partitions: 2), .init("txn-in", partitions: 1)],
            logger: testLogger
        )
        let producer = try KafkaProducer(
            configuration: producerConfiguration(broker, transactionalID: uniqueName("txn")),
            logger: testLogger
        )
        let group = uniqueName("txn-group")
        let consumer = try KafkaConsumer(
            configuration: consumerConfiguration(broker, group: group, topics: ["txn-in"]),
            logger: testLogger
        )

        try await producer.initTransactions()
        try producer.beginTransaction()
        for index in 0..<10 {
            try producer.send(ProducerRecord(topic: "txn-out", key: "k\(index)", value: "committed-\(index)"))
        }
        try await producer.sendOffsetsToTransaction(
            [TopicPartitionOffset("txn-in", 0, offset: 5)],
            groupMetadata: consumer.groupMetadata()
        )
        try await producer.commitTransaction()
        #expect(producer.failedDeliveries == 0)

        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: "txn-out", key: "x", value: "aborted"))
        try await producer.abortTransaction()

        // A new transaction after an abort works too.
        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: "txn-out", key: "k-last", value: "committed-last"))
        try await producer.commitTransaction()

        var configuration = consumerConfiguration(broker, group: uniqueName("reader"), topics: ["txn-out"])
        configuration.client.librdkafka["isolation.level"] = "read_committed"
        let reader = try KafkaConsumer(configuration: configuration, logger: testLogger)
        try reader.subscribe()
        let received = Collector<ConsumedRecord>()
        let task = startCollecting(reader, into: received)
        try await waitUntil("committed records visible") {
            Set(received.all.map(\.value)).isSuperset(of: (0..<10).map { "committed-\($0)" } + ["committed-last"])
        }
        await reader.close()
        try await task.value
        await consumer.close()
    }

    /// librdkafka 2.0.2's embedded broker does not track producer epochs, so a second producer with the same
    /// `transactional.id` does not fence the first there (Apache Kafka does). The broker's answer to a
    /// zombie is injected instead: PRODUCER_FENCED on the zombie's next AddPartitionsToTxn.
    @Test("A fenced producer's next transaction fails fatally, never silently", .timeLimit(.minutes(1)))
    func fencedProducerFails() async throws {
        let broker = try EmbeddedBroker(topics: [.init("fenced", partitions: 1)], logger: testLogger)
        let id = uniqueName("fence")
        let old = try KafkaProducer(
            configuration: producerConfiguration(broker, transactionalID: id),
            logger: testLogger
        )
        try await old.initTransactions()
        #expect(try await Self.attemptTransaction(old, value: "from-old").get() == ())

        broker.pushRequestErrors(.addPartitionsToTxn, [.producerFenced])
        let outcome = await Self.attemptTransaction(old, value: "from-zombie")
        guard case .failure(let error) = outcome else {
            Issue.record("the fenced producer committed")
            return
        }
        let detail = try #require(error.detail)
        #expect(detail.isFatal, "\(error)")
        #expect(["PRODUCER_FENCED", "_FENCED"].contains(detail.name), "\(error)")
        #expect(old.fatalError != nil)

        // A new instance with the same id starts cleanly.
        let new = try KafkaProducer(
            configuration: producerConfiguration(broker, transactionalID: id),
            logger: testLogger
        )
        try await new.initTransactions()
        #expect(try await Self.attemptTransaction(new, value: "from-new").get() == ())
    }

    private static func attemptTransaction(_ producer: KafkaProducer, value: String) async -> Result<Void, KafkaError> {
        do throws(KafkaError) {
            try producer.beginTransaction()
            _ = try producer.send(ProducerRecord(topic: "fenced", key: nil, value: value))
            try await producer.commitTransaction()
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    @Test("An injected fencing error on EndTxn surfaces as a fatal error", .timeLimit(.minutes(1)))
    func injectedFencingIsFatal() async throws {
        let broker = try EmbeddedBroker(topics: [.init("fenced2", partitions: 1)], logger: testLogger)
        let producer = try KafkaProducer(
            configuration: producerConfiguration(broker, transactionalID: uniqueName("inject")),
            logger: testLogger
        )
        try await producer.initTransactions()
        try producer.beginTransaction()
        _ = try producer.send(ProducerRecord(topic: "fenced2", key: nil, value: "v"))
        broker.pushRequestErrors(.endTxn, [.producerFenced])
        await #expect(throws: KafkaError.self) { try await producer.commitTransaction() }
        let fatal = try #require(producer.fatalError)
        #expect(fatal.detail?.isFatal == true)
    }
}
