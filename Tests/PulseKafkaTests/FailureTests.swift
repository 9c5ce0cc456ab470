import PulseKafka
import PulseTestSupport
import Testing

@Suite("Errors are never silent")
struct FailureTests {
    @Test("An unknown librdkafka property fails fast and names the key")
    func unknownPropertyIsNamed() throws {
        let client = KafkaClientConfiguration(
            bootstrapServers: "127.0.0.1:1",
            librdkafka: ["no.such.property": "1"]
        )
        #expect {
            _ = try KafkaProducer(configuration: .init(client: client), logger: testLogger)
        } throws: { error in
            guard case .invalidSetting(let key, let reason) = error as? KafkaError else { return false }
            return key == "no.such.property" && reason.contains("No such configuration property")
        }
    }

    @Test("An invalid value for a known property fails fast and names the key")
    func invalidValueIsNamed() throws {
        var client = KafkaClientConfiguration(bootstrapServers: "127.0.0.1:1")
        client.librdkafka["session.timeout.ms"] = "soon"
        let configuration = KafkaConsumer.Configuration(client: client, groupID: "g", topics: ["t"])
        #expect {
            _ = try KafkaConsumer(configuration: configuration, logger: testLogger)
        } throws: { error in
            guard case .invalidSetting(let key, _) = error as? KafkaError else { return false }
            return key == "session.timeout.ms"
        }
    }

    @Test("A pass-through property overrides the typed setting")
    func passThroughWins() throws {
        var client = KafkaClientConfiguration(bootstrapServers: "127.0.0.1:1")
        // Typed default would be lz4; an invalid pass-through value proves which one was applied last.
        client.librdkafka["compression.codec"] = "brotli"
        #expect {
            _ = try KafkaProducer(configuration: .init(client: client), logger: testLogger)
        } throws: { error in
            guard case .invalidSetting(let key, _) = error as? KafkaError else { return false }
            return key == "compression.codec"
        }
    }

    @Test("A broker error on produce reaches the sender as a delivery failure", .timeLimit(.minutes(1)))
    func injectedProduceErrorIsReported() async throws {
        let broker = try EmbeddedBroker(topics: [.init("refused", partitions: 1)], logger: testLogger)
        var configuration = producerConfiguration(broker)
        configuration.idempotence = false  // a plain producer reports the broker's error as is
        let producer = try KafkaProducer(configuration: configuration, logger: testLogger)
        broker.pushRequestErrors(.produce, [.messageTooLarge])
        do {
            _ = try await producer.sendAndWait(
                ProducerRecord(topic: "refused", key: nil, value: "too big, says the broker")
            )
            Issue.record("delivery succeeded despite the injected error")
        } catch let error {
            guard case .deliveryFailed(let topic, _, let detail) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(topic == "refused")
            #expect(detail.name == "MSG_SIZE_TOO_LARGE")
        }
        #expect(producer.failedDeliveries == 1)
        // The next message goes through: one refusal does not poison the producer.
        let report = try await producer.sendAndWait(ProducerRecord(topic: "refused", key: nil, value: "fine"))
        #expect(report.offset != nil)
    }

    @Test("A message that cannot be delivered in time reaches the delivery handler", .timeLimit(.minutes(1)))
    func timedOutDeliveryReachesHandler() async throws {
        let broker = try EmbeddedBroker(topics: [.init("unreachable", partitions: 1)], logger: testLogger)
        var configuration = producerConfiguration(broker)
        configuration.messageTimeout = .milliseconds(1500)
        let reports = Collector<DeliveryReport>()
        let producer = try KafkaProducer(
            configuration: configuration,
            onDelivery: { reports.append($0) },
            logger: testLogger
        )
        _ = try await producer.sendAndWait(ProducerRecord(topic: "unreachable", key: nil, value: "before"))
        try broker.setBrokerDown(1)
        let id = try producer.send(ProducerRecord(topic: "unreachable", key: nil, value: "lost?"))
        try await waitUntil("delivery report") { reports.count == 1 }
        let report = try #require(reports.all.first)
        #expect(report.id == id)
        #expect(!report.isSuccess)
        #expect(report.error?.detail?.name == "_MSG_TIMED_OUT")
        #expect(producer.failedDeliveries == 1)
        try broker.setBrokerUp(1)
    }
}
