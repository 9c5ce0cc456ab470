import PulseKafka
import PulseTestSupport
import Testing

@Suite("Producer: a codec per topic")
struct TopicCompressionTests {
    /// The embedded broker keeps about 5 MiB per partition, counted in the bytes it stores: 12 MiB of zeros
    /// overflow it uncompressed, and take a few kilobytes with lz4. So which records it still holds shows which
    /// codec each topic's batches were written with.
    @Test("A topic's own codec applies to it alone: uncompressed it overflows the broker, lz4 does not")
    func codecPerTopic() async throws {
        let broker = try EmbeddedBroker(
            topics: [.init("plain", partitions: 1), .init("packed", partitions: 1)],
            logger: testLogger
        )
        var configuration = producerConfiguration(broker)
        configuration.topicCompression = ["plain": "none"]
        #expect(configuration.compression == "lz4")
        let producer = try KafkaProducer(configuration: configuration, logger: testLogger)
        let zeros = [UInt8](repeating: 0, count: 8192)
        for topic in ["plain", "packed"] {
            for _ in 0..<1536 { try producer.send(ProducerRecord(topic: topic, partition: 0, value: zeros)) }
        }
        try await producer.flush()
        #expect(producer.failedDeliveries == 0)
        let reader = try PartitionReader(
            client: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers, clientID: "test-reader"),
            logger: testLogger
        )
        let plain = try reader.watermarks(TopicPartition("plain", 0))
        let packed = try reader.watermarks(TopicPartition("packed", 0))
        #expect(plain.high == 1536 && packed.high == 1536)
        #expect(plain.low > 0, "12 MiB stored uncompressed: the broker dropped the oldest")
        #expect(packed.low == 0, "lz4 zeros fit whole")
    }

    @Test("An unknown codec for a topic is refused when the producer is created, naming the topic")
    func unknownCodec() throws {
        let broker = try EmbeddedBroker(topics: [.init("plain", partitions: 1)], logger: testLogger)
        var configuration = producerConfiguration(broker)
        configuration.topicCompression = ["plain": "brotli"]
        #expect {
            _ = try KafkaProducer(configuration: configuration, logger: testLogger)
        } throws: { error in
            guard case .invalidSetting(let key, _) = error as? KafkaError else { return false }
            return key == "compression.codec (topic plain)"
        }
    }
}
