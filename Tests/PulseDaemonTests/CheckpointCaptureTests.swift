import Logging
import PulseCore
import PulseKafka
import PulseTestSupport
import Testing

@testable import PulseDaemon

@Suite("Checkpoints captured now, encoded later")
struct CheckpointCaptureTests {
    /// Reads `count` records of `topic` from the start, in the batches the consumer hands over.
    static func batches(of topic: String, count: Int, client: KafkaClientConfiguration) async throws -> [ConsumerBatch]
    {
        let consumer = try KafkaConsumer(
            configuration: .init(
                client: client,
                groupID: "capture-\(UInt32.random(in: 0...UInt32.max))",
                topics: [topic]
            ),
            logger: daemonTestLogger
        )
        try consumer.subscribe()
        var batches: [ConsumerBatch] = []
        var seen = 0
        while seen < count, let batch = try await consumer.nextBatch() {
            batches.append(batch)
            seen += batch.count
        }
        await consumer.close()
        return batches
    }

    @Test(
        "A capture encodes to the checkpoint of the moment it was taken, whatever the pipeline processed after",
        .timeLimit(.minutes(2))
    )
    func captureIsIsolatedFromLaterProcessing() async throws {
        let names = TopicNames()
        let broker = try EmbeddedBroker(
            topics: names.provisioning(inputPartitions: 3, outputPartitions: 1).map {
                EmbeddedBroker.Topic($0.name, partitions: $0.partitions)
            },
            logger: daemonTestLogger
        )
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        let start = (WallClock.nowMillis() - 3_600_000) / 60_000 * 60_000
        var generator = SyntheticEvents(configuration: .init(subjects: 50, brands: 4, users: 500, seed: 5))
        // Two minutes of events: windows open, close, and hold per-subject state at the capture.
        let events = (0..<4000).map { generator.next(occurredAtMillis: start + Int64($0) * 30) }
        for event in events {
            try producer.send(ProducerRecord(topic: names.input[0], key: event.key, value: event.json))
        }
        try await producer.flush()
        let batches = try await Self.batches(of: names.input[0], count: events.count, client: client)
        #expect(batches.reduce(0) { $0 + $1.count } == events.count)
        let half = max(1, batches.count / 2)

        func pipeline() -> IngestPipeline {
            IngestPipeline(
                producer: producer,
                topics: names,
                metrics: IngestMetrics(),
                logger: daemonTestLogger,
                nowMillis: { start + 10 * 60_000 },
                threads: 2
            )
        }
        // One pipeline captures after the first half and goes on with the second half before encoding.
        let capturing = pipeline()
        for batch in batches[..<half] { try capturing.process(batch) }
        let (captures, capturedOffsets) = capturing.capture()
        for batch in batches[half...] { try capturing.process(batch) }
        // Another processes the first half only and checkpoints at once.
        let reference = pipeline()
        for batch in batches[..<half] { try reference.process(batch) }
        let (snapshots, offsets) = reference.checkpoint()

        #expect(!captures.isEmpty)
        #expect(capturedOffsets.map(\.offset) == offsets.map(\.offset))
        let encoded = captures.map { $0.encoded() }
        #expect(encoded.map(\.source) == snapshots.map(\.source))
        #expect(encoded.map(\.offset) == snapshots.map(\.offset))
        for (mine, theirs) in zip(encoded, snapshots) {
            #expect(mine.state == theirs.state, "\(mine.source): the capture changed after it was taken")
        }
        // And the later state really differs (the second half changed it), so the comparison means something.
        let (later, _) = capturing.checkpoint()
        #expect(later.map(\.state) != snapshots.map(\.state))
    }
}
