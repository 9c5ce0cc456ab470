import Logging
import PulseCore
import PulseKafka
import PulseTestSupport
import Testing

@testable import PulseDaemon

@Suite("Checkpoints captured now, encoded later")
struct CheckpointCaptureTests {
    /// Sends `events` to `topic` and reads them back from the start, in the batches the consumer hands over.
    static func sendAndRead(
        _ events: [SyntheticEvents.Event],
        to topic: String,
        producer: KafkaProducer,
        client: KafkaClientConfiguration
    ) async throws -> [ConsumerBatch] {
        for event in events {
            try producer.send(ProducerRecord(topic: topic, key: event.key, value: event.json))
        }
        try await producer.flush()
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
        while seen < events.count, let batch = try await consumer.nextBatch() {
            batches.append(batch)
            seen += batch.count
        }
        await consumer.close()
        return batches
    }

    /// An embedded broker with the daemon's topics, and a producer on it.
    static func broker(
        inputPartitions: Int32
    ) throws -> (names: TopicNames, broker: EmbeddedBroker, client: KafkaClientConfiguration, producer: KafkaProducer) {
        let names = TopicNames()
        let broker = try EmbeddedBroker(
            topics: names.provisioning(inputPartitions: inputPartitions, outputPartitions: 1).map {
                EmbeddedBroker.Topic($0.name, partitions: $0.partitions)
            },
            logger: daemonTestLogger
        )
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        return (names, broker, client, producer)
    }

    @Test(
        "A capture encodes to the checkpoint of the moment it was taken, whatever the pipeline processed after",
        .timeLimit(.minutes(2))
    )
    func captureIsIsolatedFromLaterProcessing() async throws {
        let (names, broker, client, producer) = try Self.broker(inputPartitions: 3)
        defer { withExtendedLifetime(broker) {} }
        let start = (WallClock.nowMillis() - 3_600_000) / 60_000 * 60_000
        var generator = SyntheticEvents(configuration: .init(subjects: 50, brands: 4, users: 500, seed: 5))
        // Two minutes of events: windows open, close, and hold per-subject state at the capture.
        let events = (0..<4000).map { generator.next(occurredAtMillis: start + Int64($0) * 30) }
        let batches = try await Self.sendAndRead(events, to: names.input[0], producer: producer, client: client)
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
        // Whole states, segments spliced in (the detector is a segment of its own once it holds enough).
        for (mine, theirs) in zip(encoded, snapshots) {
            #expect(mine.assembled == theirs.assembled, "\(mine.source): the capture changed after it was taken")
        }
        // And the later state really differs (the second half changed it), so the comparison means something.
        let (later, _) = capturing.checkpoint()
        #expect(later.map(\.assembled) != snapshots.map(\.assembled))
    }

    @Test(
        "A detector that did not change since the last checkpoint is only named in the changelog; a window's close stores it anew",
        .timeLimit(.minutes(2))
    )
    func unchangedDetectorIsNamed() async throws {
        let (names, broker, client, producer) = try Self.broker(inputPartitions: 1)
        defer { withExtendedLifetime(broker) {} }
        let consumer = try KafkaConsumer(
            configuration: .init(client: client, groupID: "named-detector", topics: [names.input[0]]),
            logger: daemonTestLogger
        )
        try consumer.subscribe()
        let start = (WallClock.nowMillis() - 3_600_000) / 60_000 * 60_000
        let pipeline = IngestPipeline(
            producer: producer,
            topics: names,
            metrics: IngestMetrics(),
            logger: daemonTestLogger,
            nowMillis: { start + 10 * 60_000 },
            threads: 1
        )
        let changelog = try Changelog(
            topic: names.changelog,
            partitions: 1,
            fingerprint: 11,
            producer: producer,
            client: client,
            retainedBytes: 0,
            logger: daemonTestLogger
        )
        var generator = SyntheticEvents(configuration: .init(subjects: 50, brands: 4, users: 500, seed: 6))
        /// Produces events at these offsets from `start` (ms), processes them, checkpoints and commits.
        func step(_ times: [Int64]) async throws -> (snapshot: Changelog.Snapshot, written: Int) {
            for time in times {
                let event = generator.next(occurredAtMillis: start + time)
                try producer.send(ProducerRecord(topic: names.input[0], key: event.key, value: event.json))
            }
            try await producer.flush()
            var seen = 0
            while seen < times.count, let batch = try await consumer.nextBatch() {
                try pipeline.process(batch)
                seen += batch.count
            }
            let snapshot = try #require(pipeline.checkpoint().snapshots.first)
            let pending = try changelog.write([snapshot])
            try await producer.flush()
            try changelog.confirm(pending)
            try await producer.flush()
            return (snapshot, try #require(pending.first).written)
        }
        func detectorSegment(_ snapshot: Changelog.Snapshot) throws -> StateSegment {
            try #require(snapshot.segments.first { if case .bytes = $0.content { true } else { false } })
        }

        // Two minutes of events: windows close, the detector holds their buckets.
        let first = try await step((0..<4000).map { Int64($0) * 30 })
        let detector = try detectorSegment(first.snapshot)
        // More events in the open windows (the watermark stays 30 s of grace behind): no window closes.
        let second = try await step((0..<200).map { 120_000 + Int64($0) * 20 })
        #expect(try detectorSegment(second.snapshot).id == detector.id)
        let stored = Set(first.snapshot.segments.map(\.id))
        let newSegments = second.snapshot.segments.filter { !stored.contains($0.id) }.reduce(0) { $0 + $1.byteCount }
        // What the second checkpoint wrote: its inline bytes and manifest (a line of under 64 bytes per
        // segment, in one chunk with its header) and the segments it had not stored: not the detector.
        let slack = 64 * (second.snapshot.segments.count + 1)
        #expect(second.written <= second.snapshot.state.count + slack + newSegments)
        #expect(detector.byteCount > slack)
        // An event past the grace period closes a window: the detector changes and is stored again.
        let third = try await step([200_000])
        let changed = try detectorSegment(third.snapshot)
        #expect(changed.id != detector.id)
        let differs = changed.bytes != detector.bytes
        #expect(differs, "the detector changed")
        #expect(third.written >= changed.byteCount)
        #expect(try changelog.restore(TopicPartition(names.input[0], 0))?.state == third.snapshot.assembled)
        await consumer.close()
    }
}
