import Foundation
import Logging
import PulseCore
import PulseKafka
import ServiceLifecycle
import Synchronization
import Testing

@testable import PulseDaemon

@Suite("Changelog restore scan (pure)")
struct RestoreScanTests {
    let fingerprint: UInt64 = 42

    func chunk(offset: Int64, index: Int, _ payload: [UInt8]) -> [UInt8] {
        var writer = BinaryWriter()
        writer.byte(Changelog.magic)
        writer.byte(Changelog.chunkKind)
        writer.int(offset)
        writer.varint(UInt64(index))
        return writer.bytes + payload
    }

    func marker(
        offset: Int64,
        slot: UInt8,
        state: [UInt8],
        chunks: Int,
        fingerprint: UInt64? = nil,
        legacy: Bool = false
    ) -> [UInt8] {
        var writer = BinaryWriter()
        writer.byte(Changelog.magic)
        writer.byte(legacy ? Changelog.legacyMarkerKind : Changelog.markerKind)
        writer.int(offset)
        writer.byte(slot)
        writer.varint(UInt64(chunks))
        writer.varint(UInt64(state.count))
        writer.fixed64(legacy ? Changelog.legacyChecksum(state[...]) : Changelog.checksum(state[...]))
        writer.fixed64(fingerprint ?? self.fingerprint)
        return writer.bytes
    }

    func scan(_ records: [(String, [UInt8]?)]) -> RestoreScan {
        var scan = RestoreScan(fingerprint: self.fingerprint)
        for (key, value) in records { scan.apply(key: Array(key.utf8)[...], value: value) }
        return scan
    }

    @Test("The latest confirmed checkpoint wins; one cut short (no marker) is skipped")
    func latestConfirmed() {
        let first: [UInt8] = [1, 2, 3, 4]
        let second: [UInt8] = [9, 8, 7]
        let scan = self.scan([
            ("0/0", self.chunk(offset: 10, index: 0, [1, 2])), ("0/1", self.chunk(offset: 10, index: 1, [3, 4])),
            ("marker", self.marker(offset: 10, slot: 0, state: first, chunks: 2)),
            ("1/0", self.chunk(offset: 20, index: 0, second)),
            ("marker", self.marker(offset: 20, slot: 1, state: second, chunks: 1)),
            // A checkpoint that crashed before its marker: slot 0 again, partly written.
            ("0/0", self.chunk(offset: 30, index: 0, [5, 5])),
        ])
        #expect(scan.latest?.offset == 20)
        #expect(scan.latest?.state == second)
        #expect(scan.latest?.slot == 1)
    }

    @Test("After compaction (latest value per key, in offset order) the confirmed checkpoint is still whole")
    func compacted() {
        let state: [UInt8] = Array(0..<10)
        // Slot 0 held a larger, older checkpoint: its chunk 2 survives compaction but is not part of this one.
        let scan = self.scan([
            ("0/2", self.chunk(offset: 5, index: 2, [77])),
            ("1/0", self.chunk(offset: 40, index: 0, Array(state[0..<5]))),
            ("1/1", self.chunk(offset: 40, index: 1, Array(state[5...]))),
            ("marker", self.marker(offset: 40, slot: 1, state: state, chunks: 2)),
        ])
        #expect(scan.latest?.offset == 40)
        #expect(scan.latest?.state == state)
    }

    @Test("A marker whose chunks are missing, mixed or damaged keeps the previous checkpoint")
    func damaged() {
        let good: [UInt8] = [1, 1]
        let base: [(String, [UInt8]?)] = [
            ("0/0", self.chunk(offset: 10, index: 0, good)),
            ("marker", self.marker(offset: 10, slot: 0, state: good, chunks: 1)),
        ]
        let mixed = self.scan(
            base + [
                ("1/0", self.chunk(offset: 20, index: 0, [2])), ("1/1", self.chunk(offset: 19, index: 1, [3])),
                ("marker", self.marker(offset: 20, slot: 1, state: [2, 3], chunks: 2)),
            ]
        )
        #expect(mixed.latest?.offset == 10)
        #expect(mixed.skipped != nil)
        let missing = self.scan(
            base + [
                ("1/0", self.chunk(offset: 20, index: 0, [2])),
                ("marker", self.marker(offset: 20, slot: 1, state: [2, 3], chunks: 2)),
            ]
        )
        #expect(missing.latest?.offset == 10)
        let corrupt = self.scan(
            base + [
                ("1/0", self.chunk(offset: 20, index: 0, [2, 4])),
                ("marker", self.marker(offset: 20, slot: 1, state: [2, 3], chunks: 1)),
            ]
        )
        #expect(corrupt.latest?.offset == 10)
        #expect(corrupt.skipped?.contains("checksum") == true)
    }

    @Test("A marker of the previous version (checksummed byte by byte) still restores; a mixed-up kind does not")
    func legacyMarker() {
        let state: [UInt8] = Array(0..<37)
        let chunks: [(String, [UInt8]?)] = [
            ("0/0", self.chunk(offset: 10, index: 0, Array(state[0..<20]))),
            ("0/1", self.chunk(offset: 10, index: 1, Array(state[20...]))),
        ]
        let legacy = self.scan(
            chunks + [("marker", self.marker(offset: 10, slot: 0, state: state, chunks: 2, legacy: true))]
        )
        #expect(legacy.latest?.state == state)
        // The previous version's checksum under the current kind is a damaged marker.
        var mislabelled = self.marker(offset: 10, slot: 0, state: state, chunks: 2, legacy: true)
        mislabelled[1] = Changelog.markerKind
        let wrong = self.scan(chunks + [("marker", mislabelled)])
        #expect(wrong.latest == nil)
        #expect(wrong.skipped?.contains("checksum") == true)
    }

    @Test("The checksum changes with any one bit flipped, at any position, and with the length")
    func checksumSensitivity() {
        var random = SplitMix64(seed: 9)
        let state = (0..<1_027).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let reference = Changelog.checksum(state[...])
        var collisions = 0
        for position in state.indices {
            for bit in 0..<8 {
                var flipped = state
                flipped[position] ^= UInt8(1) << UInt8(bit)
                if Changelog.checksum(flipped[...]) == reference { collisions += 1 }
            }
        }
        #expect(collisions == 0)
        #expect(Changelog.checksum(state.dropLast()) != reference)
        #expect(Changelog.checksum((state + [0])[...]) != reference)
        #expect(Changelog.checksum([][...]) != Changelog.checksum([0][...]))
    }

    @Test("Another window grid, or a tombstone on the marker, means starting empty")
    func fingerprintAndReset() {
        let state: [UInt8] = [1]
        let other = self.scan([
            ("0/0", self.chunk(offset: 10, index: 0, state)),
            ("marker", self.marker(offset: 10, slot: 0, state: state, chunks: 1, fingerprint: 7)),
        ])
        #expect(other.latest == nil)
        #expect(other.skipped != nil)
        let reset = self.scan([
            ("0/0", self.chunk(offset: 10, index: 0, state)),
            ("marker", self.marker(offset: 10, slot: 0, state: state, chunks: 1)), ("marker", nil),
        ])
        #expect(reset.latest == nil)
    }
}

@Suite("Changelog through the embedded broker", .serialized)
struct ChangelogTests {
    final class Running: Sendable {
        let daemon: Daemon
        let group: ServiceGroup
        let task: Task<Void, any Error>

        init(daemon: Daemon, group: ServiceGroup, task: Task<Void, any Error>) {
            self.daemon = daemon
            self.group = group
            self.task = task
        }

        func stop() async throws {
            await self.group.triggerGracefulShutdown()
            try await self.task.value
        }
    }

    static func start(client: KafkaClientConfiguration, groupID: String, windows: WindowEngine.Configuration) throws
        -> Running
    {
        let daemon = try Daemon(
            configuration: Daemon.Configuration(
                client: client,
                groupID: groupID,
                windows: windows,
                sessionTimeout: .seconds(6)
            ),
            logger: daemonTestLogger
        )
        let group = ServiceGroup(services: [daemon.service], logger: daemonTestLogger)
        return Running(daemon: daemon, group: group, task: Task { try await group.run() })
    }

    static func waitFor(_ limit: Duration, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
    }

    static func like(_ subject: String, at: Int64, id: String) -> (key: String, json: String) {
        (
            subject,
            #"{"event_id":"\#(id)","type":"like","occurred_at":\#(at),"subject_id":"\#(subject)","brand":"b-\#(subject.count % 7)","user_id":"u-\#(id)"}"#
        )
    }

    /// An embedded broker with one single-partition changelog topic, and a producer to write it.
    struct OneTopic {
        let topic: String
        let broker: EmbeddedBroker
        let client: KafkaClientConfiguration
        let producer: KafkaProducer

        init(_ topic: String) throws {
            self.topic = topic
            self.broker = try EmbeddedBroker(
                topics: [EmbeddedBroker.Topic(topic, partitions: 1)],
                logger: daemonTestLogger
            )
            self.client = KafkaClientConfiguration(bootstrapServers: self.broker.bootstrapServers)
            self.producer = try KafkaProducer(configuration: .init(client: self.client), logger: daemonTestLogger)
        }

        /// A changelog on the topic: each one a process of its own (its own segment keys).
        func changelog(fingerprint: UInt64, retained: Int = 0) throws -> Changelog {
            try Changelog(
                topic: self.topic,
                partitions: 1,
                fingerprint: fingerprint,
                producer: self.producer,
                client: self.client,
                retainedBytes: retained,
                logger: daemonTestLogger
            )
        }
    }

    /// The changelog's records, in order: key and value (`nil` for a tombstone).
    static func records(of log: Changelog) throws -> [(key: String, value: [UInt8]?)] {
        var records: [(key: String, value: [UInt8]?)] = []
        try log.reader.readAll(TopicPartition(log.topic, 0)) { record in
            records.append((String(decoding: record.key ?? [], as: UTF8.self), record.value))
        }
        return records
    }

    @Test(
        "Segments: stored once, named by later checkpoints, deleted once no confirmed checkpoint names them, restored by another process, which stores its own",
        .timeLimit(.minutes(3))
    )
    func segments() async throws {
        let fixture = try OneTopic("segment-changelog")
        defer { withExtendedLifetime(fixture) {} }
        let producer = fixture.producer
        func changelog(retained: Int = 0) throws -> Changelog {
            try fixture.changelog(fingerprint: 7, retained: retained)
        }
        let source = TopicPartition("events", 0)
        let block = 4096 * 8
        var dedup = Deduplicator(configuration: .init(horizonMillis: 120_000, maxEntries: 10_000_000))
        var next = 0
        func record(_ count: Int, minute: Int64) {
            for _ in 0..<count {
                _ = dedup.isDuplicate(eventID: "e\(next)", occurredAt: minute * 60_000 + 5)
                next += 1
            }
        }
        func snapshot(_ offset: Int64) -> Changelog.Snapshot {
            var writer = BinaryWriter()
            writer.segmenting = true
            dedup.write(to: &writer)
            return Changelog.Snapshot(source: source, offset: offset, state: writer.bytes, segments: writer.segments)
        }
        func commit(_ log: Changelog, _ snapshot: Changelog.Snapshot) async throws -> Changelog.Pending {
            let pending = try log.write([snapshot])
            try await producer.flush()
            try log.confirm(pending)
            try await producer.flush()
            return try #require(pending.first)
        }
        func tombstones(matching text: String) throws -> Int {
            try Self.records(of: changelog()).filter { $0.value == nil && $0.key.contains(text) }.count
        }

        let first = try changelog()
        record(10_000, minute: 100)
        let one = snapshot(1)
        #expect(one.segments.count == 2)
        let written1 = try await commit(first, one).written
        #expect(written1 > 2 * block && written1 < 3 * block)

        // Only the block sealed since is stored; the other two are named.
        record(5_000, minute: 100)
        let two = snapshot(2)
        #expect(two.segments.count == 3)
        let written2 = try await commit(first, two).written
        #expect(written2 > block && written2 < 2 * block)
        let restored2 = try #require(try first.restore(source))
        #expect(restored2.offset == 2)
        #expect(restored2.state == two.assembled)
        var reader = BinaryReader(restored2.state)
        #expect(try Deduplicator(reading: &reader, configuration: dedup.configuration).count == 15_000)
        first.forget([source])  // as after a restore: the next checkpoint stores its segments again
        let again = try await commit(first, snapshot(3)).written
        #expect(again > 3 * block)

        // Minute 100 leaves the horizon. Its segments are deleted once a checkpoint that does not name them
        // is confirmed and delivered: at the next confirmation, not before.
        record(100, minute: 103)
        let four = snapshot(4)
        #expect(four.segments.isEmpty)
        _ = try await commit(first, four)
        #expect(try tombstones(matching: "/seg/") == 0)
        record(100, minute: 103)
        _ = try await commit(first, snapshot(5))
        // The three blocks stored twice (before and after forget) under the same keys, plus the restore's
        // findings: every segment key of minute 100 has its tombstone.
        let segmentKeys = Set(try Self.records(of: first).filter { $0.key.contains("/seg/") }.map(\.key))
        #expect(segmentKeys.count == 3)
        #expect(try tombstones(matching: "/seg/") >= 3)
        #expect(try first.restore(source)?.state == snapshot(5).assembled)

        // Another process restores the segments, stores its own at its first checkpoint, and deletes the first
        // process's at its second.
        record(20_000, minute: 104)
        let six = snapshot(6)
        _ = try await commit(first, six)
        let second = try changelog()
        #expect(second.process != first.process)
        #expect(try second.restore(source)?.state == six.assembled)
        record(10, minute: 104)
        let written7 = try await commit(second, snapshot(7)).written
        #expect(written7 > 4 * block)
        #expect(try tombstones(matching: "/seg/\(first.process)-") == 3)
        record(10, minute: 104)
        let eight = snapshot(8)
        _ = try await commit(second, eight)
        #expect(try tombstones(matching: "/seg/\(first.process)-") == 3 + 4)
        #expect(try tombstones(matching: "/seg/\(second.process)-") == 0)
        #expect(try changelog().restore(source)?.state == eight.assembled)

        // Compacted (the latest value of each key, tombstones dropped), the changelog still restores.
        let records = try Self.records(of: first)
        var latest: [String: (index: Int, value: [UInt8]?)] = [:]
        for (index, record) in records.enumerated() { latest[record.key] = (index, record.value) }
        let compacted = latest.sorted { $0.value.index < $1.value.index }.compactMap { entry in
            entry.value.value.map { (key: entry.key, value: $0) }
        }
        var scan = RestoreScan(fingerprint: 7)
        let prefix = Changelog.keyPrefix(source)
        for record in compacted {
            scan.apply(key: Array(record.key.dropFirst(prefix.count).utf8)[...], value: record.value)
        }
        #expect(scan.latest?.state == eight.assembled)
        #expect(scan.skipped == nil)

        // A segment missing, or damaged, makes that checkpoint unusable (and says why).
        let named = try #require(compacted.last { $0.key.contains("/seg/\(second.process)-") })
        for damage in ["missing", "damaged"] {
            var scan = RestoreScan(fingerprint: 7)
            for record in compacted {
                var value = record.value
                if record.key == named.key {
                    guard damage == "damaged" else { continue }
                    value[value.count - 1] ^= 1
                }
                scan.apply(key: Array(record.key.dropFirst(prefix.count).utf8)[...], value: value)
            }
            #expect(scan.latest == nil, "\(damage)")
            #expect(scan.skipped?.contains(damage == "missing" ? "is missing" : "fails its checksum") == true)
        }

        // A broker that keeps little of each partition: a segment is stored again once enough bytes followed
        // it (here 1 KiB: the previous checkpoint's chunks are more), unless the checkpoint is too large
        // for what the broker keeps (then never).
        var nine = snapshot(9)
        let total = nine.state.count + nine.segments.count * block
        #expect(nine.segments.count == 4)
        for (partition, retained) in [(Int32(1), 2 * total + 2 * 1024), (2, total)] {
            let little = try changelog(retained: retained)
            nine.source = TopicPartition("events", partition)
            let written9 = try await commit(little, nine).written
            let written10 = try await commit(little, nine).written
            #expect(written9 > nine.segments.count * block)
            if partition == 1 {
                #expect(written9 == written10)
            } else {
                #expect(written9 - written10 >= nine.segments.count * block)
            }
        }
    }

    @Test(
        "A detector larger than a record is stored as several segments, named while it does not change, and restored whole",
        .timeLimit(.minutes(2))
    )
    func largeDetector() async throws {
        let fixture = try OneTopic("large-detector-changelog")
        defer { withExtendedLifetime(fixture) {} }
        let producer = fixture.producer
        let changelog = try fixture.changelog(fingerprint: 9)
        // 200 posts whose window holds a full sample of long negative comments: about 3 MB of evidence.
        var detector = CrisisDetector(level: .subject)
        let start: Int64 = 1_795_687_200_000
        let text = String(repeating: "Awful, broken on arrival and nobody answers. ", count: 4)
        for post in 0..<200 {
            var aggregate = WindowAggregate()
            for index in 0..<CrisisEvidence.sampleCapacity {
                let event = Event(
                    eventID: "post-\(post)-comment-\(index)-with-a-long-event-identifier",
                    kind: .comment,
                    occurredAt: start + Int64(index),
                    subjectID: "post-\(post)",
                    userID: "user-\(index)",
                    brand: "acme",
                    text: text,
                    lang: "en"
                )
                aggregate.add(event, userHash: stableHash(event.userID), depth: nil, sentiment: -0.9)
            }
            detector.observe(
                MetricsRecord(
                    key: EntityKey(.subject, "post-\(post)"),
                    windowStart: start,
                    windowEnd: start + 60_000,
                    isFinal: true,
                    revision: 0,
                    aggregate: aggregate,
                    previousShares: nil
                )
            )
        }
        func snapshot(_ offset: Int64) -> Changelog.Snapshot {
            var writer = BinaryWriter()
            writer.segmenting = true
            writer.maximumSegmentBytes = Changelog.chunkBytes
            detector.write(to: &writer)
            return Changelog.Snapshot(
                source: TopicPartition("events", 0),
                offset: offset,
                state: writer.bytes,
                segments: writer.segments
            )
        }
        func commit(_ snapshot: Changelog.Snapshot) async throws -> Int {
            let pending = try changelog.write([snapshot])
            try await producer.flush()
            try changelog.confirm(pending)
            try await producer.flush()
            return try #require(pending.first).written
        }
        let first = snapshot(1)
        let total = first.segments.reduce(0) { $0 + $1.byteCount }
        #expect(total > 2 * Changelog.chunkBytes)
        #expect(first.segments.count == (total + Changelog.chunkBytes - 1) / Changelog.chunkBytes)
        #expect(first.segments.allSatisfy { $0.byteCount <= Changelog.chunkBytes && $0.position == 0 })
        // One record each: over the broker's message size limit, the commit would fail.
        #expect(try await commit(first) > total)
        let second = snapshot(2)
        #expect(second.segments.map(\.id) == first.segments.map(\.id))
        #expect(try await commit(second) < 64 * (second.segments.count + 1))
        let restored = try #require(try changelog.restore(TopicPartition("events", 0)))
        #expect(restored.offset == 2)
        let whole = restored.state == second.assembled
        #expect(whole)
        var reader = BinaryReader(restored.state)
        #expect(try CrisisDetector(reading: &reader, level: .subject, configuration: .init()).entityCount == 0)
        #expect(reader.isAtEnd)
    }

    @Test(
        "100 000 entities: a new group without committed offsets restores them and resumes at the checkpoints",
        .timeLimit(.minutes(7))
    )
    func restoreHundredThousandEntities() async throws {
        let names = TopicNames()
        let broker = try EmbeddedBroker(
            topics: names.provisioning(inputPartitions: 8, outputPartitions: 16).map {
                EmbeddedBroker.Topic($0.name, partitions: $0.partitions)
            },
            logger: daemonTestLogger
        )
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        let window = (WallClock.nowMillis() - 3_600_000) / 60_000 * 60_000
        let entities = 100_000
        for index in 0..<entities {
            let event = Self.like("s-\(index)", at: window + Int64(index % 50_000), id: "a\(index)")
            try producer.send(ProducerRecord(topic: names.input[0], key: event.key, value: event.json))
            if index % 10_000 == 9_999 { try await producer.flush() }
        }
        try await producer.flush()

        var windows = WindowEngine.Configuration()
        windows.idleCloseMillis = 600_000  // nothing closes by the wall clock in this test
        // The first instance reads everything, checkpoints at its commits, and leaves gracefully.
        let first = try Self.start(client: client, groupID: "restore-a", windows: windows)
        try await Self.waitFor(.seconds(120)) { first.daemon.pipeline.counters.accepted >= entities }
        #expect(first.daemon.pipeline.counters.accepted == entities)
        try await first.stop()
        #expect(first.daemon.pipeline.outputCounts.metrics == 0)  // the window is still open

        // More events: a second like for 100 subjects in the same window, then later events that close it.
        var more: [(key: String, json: String)] = []
        for index in 0..<100 { more.append(Self.like("s-\(index)", at: window + 30_000, id: "b\(index)")) }
        for index in 0..<100 { more.append(Self.like("s-\(index)", at: window + 10 * 60_000, id: "c\(index)")) }
        for event in more {
            try producer.send(ProducerRecord(topic: names.input[0], key: event.key, value: event.json))
        }
        try await producer.flush()

        // A different group has no committed offsets: starting from the beginning would count every
        // event twice. It must restore the checkpoints and start where they were taken.
        let second = try Self.start(client: client, groupID: "restore-b", windows: windows)
        let reader = try KafkaConsumer(
            configuration: .init(client: client, groupID: "restore-reader", topics: [names.metrics]),
            logger: daemonTestLogger
        )
        try reader.subscribe()
        var likes: [String: Int] = [:]
        // Generous: a debug build under the whole suite's load took up to ~150 s to emit and read all 100 000
        // records (one clean-clone run stopped reading at 99 536 when this was 150 s).
        let deadline = ContinuousClock.now + .seconds(240)
        while likes.count < entities && ContinuousClock.now < deadline {
            guard let batch = try await reader.nextBatch(maxWait: .seconds(1)) else { break }
            for message in batch {
                let key = String(decoding: message.key ?? [], as: UTF8.self)
                guard key.hasPrefix("subject|"), key.hasSuffix("|\(RFC3339.format(millis: window))") else { continue }
                let value = String(decoding: message.value, as: UTF8.self)
                // "counts":{"like":N,...}
                guard let range = value.range(of: #""like":"#) else { continue }
                let digits = value[range.upperBound...].prefix { $0.isNumber }
                likes[key] = Int(digits)
            }
        }
        await reader.close()
        try await second.stop()

        #expect(second.daemon.pipeline.counters.accepted == more.count)
        #expect(likes.count == entities)
        var wrong = 0
        for index in 0..<entities {
            let key = "subject|s-\(index)|\(RFC3339.format(millis: window))"
            if likes[key] != (index < 100 ? 2 : 1) {
                wrong += 1
                if wrong <= 3 { Issue.record("\(key): \(likes[key].map(String.init) ?? "missing") likes") }
            }
        }
        #expect(wrong == 0)
    }

    @Test(
        "Broker faults (produce and commit errors, the broker down and up) leave the outputs equal to replay's",
        .timeLimit(.minutes(4))
    )
    func brokerFaults() async throws {
        let end = (WallClock.nowMillis() - 10 * 60_000) / 60_000 * 60_000
        let start = end - 6 * 60_000
        var generator = SyntheticEvents(configuration: .init(subjects: 40, brands: 5, users: 300, seed: 23))
        let events = (0..<3000).map { generator.next(occurredAtMillis: start + Int64($0) * 120) }
        let expected = replayMetrics(events)

        let names = TopicNames()
        let broker = try EmbeddedBroker(
            topics: names.provisioning(inputPartitions: 3, outputPartitions: 2).map {
                EmbeddedBroker.Topic($0.name, partitions: $0.partitions)
            },
            logger: daemonTestLogger
        )
        let client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: daemonTestLogger)
        func send(_ slice: ArraySlice<SyntheticEvents.Event>) async throws {
            for event in slice {
                try producer.send(ProducerRecord(topic: names.input[0], key: event.key, value: event.json))
            }
            try await producer.flush()
        }
        var windows = WindowEngine.Configuration()
        windows.idleCloseMillis = 3000
        let running = try Self.start(client: client, groupID: "faults", windows: windows)
        let pipeline = running.daemon.pipeline

        try await send(events[0..<1000])
        try await Self.waitFor(.seconds(60)) { pipeline.counters.accepted >= 990 }
        // Produce requests fail (retriable) and commits meet a coordinator that moved or is loading.
        broker.pushRequestErrors(.produce, Array(repeating: .notLeaderForPartition, count: 4) + [.requestTimedOut])
        broker.pushRequestErrors(.offsetCommit, [.notCoordinator, .coordinatorLoadInProgress, .notCoordinator])
        try await send(events[1000..<2000])
        try await Self.waitFor(.seconds(60)) { pipeline.counters.accepted >= 1980 }
        // The whole cluster away for 3 s, with output and checkpoints in flight.
        try broker.setBrokerDown(1)
        try await Task.sleep(for: .seconds(3))
        try broker.setBrokerUp(1)
        try await send(events[2000...])

        let reader = try KafkaConsumer(
            configuration: .init(client: client, groupID: "faults-reader", topics: [names.metrics]),
            logger: daemonTestLogger
        )
        try reader.subscribe()
        var actual: [String: [String]] = [:]
        let deadline = ContinuousClock.now + .seconds(120)
        while actual.count < expected.count && ContinuousClock.now < deadline {
            guard let batch = try await reader.nextBatch(maxWait: .seconds(1)) else { break }
            for message in batch {
                actual[String(decoding: message.key ?? [], as: UTF8.self), default: []].append(
                    String(decoding: message.value, as: UTF8.self)
                )
            }
        }
        await reader.close()
        try await running.stop()

        #expect(Set(actual.keys) == Set(expected.keys))
        var mismatches = 0
        for (key, values) in actual {
            for value in values where value != expected[key] {
                mismatches += 1
                if mismatches <= 3 { Issue.record("\(key)\nreplay: \(expected[key] ?? "none")\nkafka:  \(value)") }
            }
        }
        #expect(mismatches == 0)
        #expect(producer.failedDeliveries == 0)
    }
}
