import PulseKafka
import PulseTestSupport
import Testing

@Suite("Producer → embedded broker → Consumer")
struct RoundTripTests {
    @Test("100 000 keyed messages with headers: none lost, order kept per partition", .timeLimit(.minutes(2)))
    func roundTripKeepsEveryMessageInPartitionOrder() async throws {
        let topic = "roundtrip"
        // 100 000 × ~60 bytes over 8 partitions stays far below the embedded broker's ~5 MiB per partition.
        let broker = try EmbeddedBroker(topics: [.init(topic, partitions: 8)], logger: testLogger)
        let consumer = try KafkaConsumer(
            configuration: consumerConfiguration(broker, group: uniqueName("roundtrip"), topics: [topic]),
            logger: testLogger
        )
        try consumer.subscribe()
        let received = Collector<ConsumedRecord>()
        let consuming = startCollecting(consumer, into: received)

        let failures = Collector<DeliveryReport>()
        let producer = try KafkaProducer(
            configuration: producerConfiguration(broker),
            onDelivery: { report in if !report.isSuccess { failures.append(report) } },
            logger: testLogger
        )
        let total = 100_000
        for sequence in 0..<total {
            try producer.send(
                ProducerRecord(
                    topic: topic,
                    key: "key-\(sequence % 997)",
                    value: "seq=\(sequence)",
                    headers: [KafkaHeader(name: "seq", string: "\(sequence)"), KafkaHeader(name: "empty", value: nil)]
                )
            )
        }
        try await producer.flush()
        #expect(failures.all.isEmpty)
        #expect(producer.failedDeliveries == 0)

        try await waitUntil("all messages consumed", timeout: .seconds(60)) { received.count >= total }
        await consumer.close()
        try await consuming.value

        let records = received.all
        #expect(records.count == total)
        let sequences = records.map { Int($0.value.dropFirst(4))! }
        #expect(Set(sequences) == Set(0..<total))

        // Offsets within each partition are contiguous and increasing.
        var lastOffset: [TopicPartition: Int64] = [:]
        // One key lives in one partition, and its messages arrive in the order they were sent.
        var lastSequenceOfKey: [String: Int] = [:]
        var partitionOfKey: [String: TopicPartition] = [:]
        for (record, sequence) in zip(records, sequences) {
            if let previous = lastOffset[record.topicPartition] {
                #expect(record.offset == previous + 1, "gap or reorder in \(record.topicPartition)")
            }
            lastOffset[record.topicPartition] = record.offset
            let key = try #require(record.key)
            #expect(key == "key-\(sequence % 997)")
            if let previous = lastSequenceOfKey[key] {
                #expect(sequence > previous, "key \(key) out of order")
            }
            lastSequenceOfKey[key] = sequence
            if let partition = partitionOfKey[key] {
                #expect(partition == record.topicPartition)
            }
            partitionOfKey[key] = record.topicPartition
            #expect(
                record.headers == [
                    KafkaHeader(name: "seq", string: "\(sequence)"), KafkaHeader(name: "empty", value: nil),
                ]
            )
        }
        #expect(lastOffset.count == 8, "keys should spread over all partitions")
    }

    @Test("A consumer that does not copy headers still gets keys, values and offsets", .timeLimit(.minutes(1)))
    func consumerWithoutHeadersKeepsTheRest() async throws {
        let topic = "no-headers"
        let broker = try EmbeddedBroker(topics: [.init(topic, partitions: 2)], logger: testLogger)
        let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger)
        // With and without headers in one batch: the copy must not shift what follows a message with headers.
        for index in 0..<50 {
            try producer.send(
                ProducerRecord(
                    topic: topic,
                    key: "k\(index)",
                    value: "v\(index)",
                    headers: index.isMultiple(of: 2) ? [KafkaHeader(name: "n", string: "\(index)")] : []
                )
            )
        }
        try await producer.flush()

        for copiesHeaders in [false, true] {
            var configuration = consumerConfiguration(broker, group: uniqueName("headers"), topics: [topic])
            configuration.copiesHeaders = copiesHeaders
            let consumer = try KafkaConsumer(configuration: configuration, logger: testLogger)
            try consumer.subscribe()
            let received = Collector<ConsumedRecord>()
            let task = startCollecting(consumer, into: received)
            try await waitUntil("all 50 consumed") { received.count == 50 }
            await consumer.close()
            try await task.value

            let byKey = Dictionary(uniqueKeysWithValues: received.all.map { ($0.key ?? "", $0) })
            for index in 0..<50 {
                let record = try #require(byKey["k\(index)"])
                #expect(record.value == "v\(index)")
                let expected =
                    copiesHeaders && index.isMultiple(of: 2) ? [KafkaHeader(name: "n", string: "\(index)")] : []
                #expect(record.headers == expected)
            }
        }
    }

    @Test("A message sent and awaited reports its partition and offset")
    func awaitedSendReportsOffset() async throws {
        let broker = try EmbeddedBroker(topics: [.init("single", partitions: 1)], logger: testLogger)
        let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger)
        let first = try await producer.sendAndWait(ProducerRecord(topic: "single", key: "a", value: "one"))
        let second = try await producer.sendAndWait(ProducerRecord(topic: "single", key: nil, value: "two"))
        #expect(first.partition == 0 && first.offset == 0)
        #expect(second.offset == 1)
        #expect(first.id != second.id)
    }
}
