import PulseTestSupport
import Testing

@testable import PulseKafka

@Suite("Delivery epochs: a flush that does not block")
struct DeliveryEpochTests {
    @Test("An epoch counts as delivered only once every message sent in it or before it has a report")
    func ringArithmetic() {
        var epochs = DeliveryEpochs()
        let first = epochs.count()
        #expect(!epochs.isDelivered(through: 0), "epoch 0 is still open: more may be sent into it")
        #expect(epochs.close() == 0)
        #expect(!epochs.isDelivered(through: 0))
        let second = epochs.count()
        #expect(epochs.close() == 1)
        epochs.uncount(slot: second)
        #expect(!epochs.isDelivered(through: 1), "epoch 0's message is still outstanding")
        epochs.uncount(slot: first)
        #expect(epochs.isDelivered(through: 0))
        #expect(epochs.isDelivered(through: 1))
        // A message of a later epoch does not hold back an earlier one.
        _ = epochs.count()
        #expect(epochs.close() == 2)
        #expect(epochs.isDelivered(through: 1))
        #expect(!epochs.isDelivered(through: 2))
    }

    @Test("An outstanding message eight epochs old holds back the epoch sharing its slot")
    func ringWrapsConservatively() {
        var epochs = DeliveryEpochs()
        let old = epochs.count()
        for _ in 0..<Int(DeliveryEpochs.slots) { _ = epochs.close() }
        // Epoch 8 shares epoch 0's slot: it may not count as delivered while epoch 0's message is out.
        #expect(epochs.close() == DeliveryEpochs.slots)
        #expect(!epochs.isDelivered(through: DeliveryEpochs.slots))
        epochs.uncount(slot: old)
        #expect(epochs.isDelivered(through: DeliveryEpochs.slots))
    }

    @Test("Against the broker: an epoch waits for a broker that is down, not for later sends", .timeLimit(.minutes(1)))
    func epochsFollowDeliveries() async throws {
        let broker = try EmbeddedBroker(topics: [.init("epochs", partitions: 2)], logger: testLogger)
        var configuration = producerConfiguration(broker)
        configuration.messageTimeout = .seconds(20)
        let producer = try KafkaProducer(configuration: configuration, logger: testLogger)
        try producer.send(ProducerRecord(topic: "epochs", partition: 0, key: nil, value: "first"))
        let first = producer.closeEpoch()
        try await waitUntil("the first epoch delivered") { producer.isDelivered(through: first) }

        try broker.setBrokerDown(1)
        try producer.send(ProducerRecord(topic: "epochs", partition: 1, key: nil, value: "held"))
        let held = producer.closeEpoch()
        try producer.send(ProducerRecord(topic: "epochs", partition: 0, key: nil, value: "later"))
        // With the broker down nothing can be delivered; a flush would block here.
        try await Task.sleep(for: .milliseconds(500))
        #expect(!producer.isDelivered(through: held))
        #expect(producer.isDelivered(through: first))
        try broker.setBrokerUp(1)
        try await waitUntil("the held epoch delivered") { producer.isDelivered(through: held) }
        #expect(producer.failedDeliveries == 0)
        // The later message is in the open epoch; closing it and waiting covers it too.
        let later = producer.closeEpoch()
        try await waitUntil("the later epoch delivered") { producer.isDelivered(through: later) }
        #expect(producer.outstanding == 0)
    }

    @Test("A message refused before it is queued leaves its epoch", .timeLimit(.minutes(1)))
    func refusedSendIsNotCounted() async throws {
        let broker = try EmbeddedBroker(topics: [.init("refusing", partitions: 1)], logger: testLogger)
        let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger)
        _ = try await producer.sendAndWait(ProducerRecord(topic: "refusing", key: nil, value: "known"))
        #expect(throws: KafkaError.self) {
            try producer.send(ProducerRecord(topic: "refusing", partition: 7, key: nil, value: "no such partition"))
        }
        let epoch = producer.closeEpoch()
        try await waitUntil("the epoch delivered") { producer.isDelivered(through: epoch) }
    }
}
