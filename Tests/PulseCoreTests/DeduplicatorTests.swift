import PulseCore
import Testing

@Suite("Duplicates")
struct DeduplicatorTests {
    let minute: Int64 = 60_000

    @Test("An id seen within the horizon is a duplicate, even with another event time")
    func duplicateWithinHorizon() {
        var dedup = Deduplicator()
        do {
            let seen = dedup.isDuplicate(eventID: "a", occurredAt: 0)
            #expect(!seen)
        }
        do {
            let seen = dedup.isDuplicate(eventID: "a", occurredAt: 0)
            #expect(seen)
        }
        do {
            let seen = dedup.isDuplicate(eventID: "a", occurredAt: 3 * self.minute)
            #expect(seen)
        }
        do {
            let seen = dedup.isDuplicate(eventID: "b", occurredAt: 0)
            #expect(!seen)
        }
    }

    @Test("Ids are forgotten once event time has moved past the horizon")
    func forgetsAfterHorizon() {
        var dedup = Deduplicator(configuration: .init(horizonMillis: 10 * self.minute))
        do {
            let seen = dedup.isDuplicate(eventID: "old", occurredAt: 0)
            #expect(!seen)
        }
        do {
            let seen = dedup.isDuplicate(eventID: "mid", occurredAt: 5 * self.minute)
            #expect(!seen)
        }
        // Event time advances 12 minutes: "old" (bucket 0) is beyond the 10-minute horizon, "mid" is not.
        do {
            let seen = dedup.isDuplicate(eventID: "new", occurredAt: 12 * self.minute)
            #expect(!seen)
        }
        do {
            let seen = dedup.isDuplicate(eventID: "mid", occurredAt: 12 * self.minute)
            #expect(seen)
        }
        do {
            let seen = dedup.isDuplicate(eventID: "old", occurredAt: 12 * self.minute)
            #expect(!seen)
        }
    }

    @Test("An event older than the horizon passes without being remembered")
    func tooOldToJudge() {
        var dedup = Deduplicator(configuration: .init(horizonMillis: 10 * self.minute))
        do {
            let seen = dedup.isDuplicate(eventID: "now", occurredAt: 60 * self.minute)
            #expect(!seen)
        }
        do {
            let seen = dedup.isDuplicate(eventID: "ancient", occurredAt: 0)
            #expect(!seen)
        }
        do {
            let seen = dedup.isDuplicate(eventID: "ancient", occurredAt: 0)
            #expect(!seen)
        }
        #expect(dedup.count == 1)
    }

    @Test("Memory stays bounded: at the cap the oldest bucket goes first")
    func boundedMemory() {
        var dedup = Deduplicator(configuration: .init(horizonMillis: 10 * self.minute, maxEntries: 1000))
        for index in 0..<100_000 {
            _ = dedup.isDuplicate(eventID: "id-\(index)", occurredAt: Int64(index) * 6)  // ~10 minutes of time
            #expect(dedup.count <= 1000)
        }
        #expect(dedup.evictedEarly > 0)
        // The most recent ids are still known.
        do {
            let seen = dedup.isDuplicate(eventID: "id-99999", occurredAt: 599_994)
            #expect(seen)
        }
    }

    @Test("A time jump far ahead forgets everything quickly")
    func timeJump() {
        var dedup = Deduplicator()
        for index in 0..<100 { _ = dedup.isDuplicate(eventID: "x\(index)", occurredAt: 0) }
        do {
            let seen = dedup.isDuplicate(eventID: "future", occurredAt: 1_795_687_200_000)
            #expect(!seen)
        }
        #expect(dedup.count == 1)
    }

    @Test("Written as segments, full blocks leave the bytes; spliced back, they give the same bytes")
    func segments() throws {
        var dedup = Deduplicator(configuration: .init(horizonMillis: 10 * self.minute, maxEntries: 1_000_000))
        // Minute 0: two full blocks and a partial one; minute 1: one id; minute 2: exactly one full block.
        for index in 0..<(2 * 4096 + 17) { _ = dedup.isDuplicate(eventID: "a\(index)", occurredAt: 5) }
        _ = dedup.isDuplicate(eventID: "b", occurredAt: self.minute)
        for index in 0..<4096 { _ = dedup.isDuplicate(eventID: "c\(index)", occurredAt: 2 * self.minute) }
        var plain = BinaryWriter()
        dedup.write(to: &plain)
        var segmented = BinaryWriter()
        segmented.segmenting = true
        dedup.write(to: &segmented)
        #expect(segmented.segments.count == 3)
        #expect(segmented.bytes.count == plain.bytes.count - 3 * 4096 * 8)
        #expect(Set(segmented.segments.map(\.id)).count == 3)
        #expect(StateSegment.splice(segmented.segments, into: segmented.bytes) == plain.bytes)

        // A block keeps its identity while it lives; a new block gets a new one.
        let before = Set(segmented.segments.map(\.id))
        for index in 0..<4096 { _ = dedup.isDuplicate(eventID: "d\(index)", occurredAt: 3 * self.minute) }
        var later = BinaryWriter()
        later.segmenting = true
        dedup.write(to: &later)
        let after = Set(later.segments.map(\.id))
        #expect(after.count == 4)
        #expect(before.isSubset(of: after))

        // The restored deduplicator knows every id.
        var reader = BinaryReader(StateSegment.splice(later.segments, into: later.bytes))
        var restored = try Deduplicator(reading: &reader, configuration: dedup.configuration)
        #expect(restored.count == dedup.count)
        let knowsOld = restored.isDuplicate(eventID: "a8000", occurredAt: 5)
        let knowsNew = restored.isDuplicate(eventID: "d4095", occurredAt: 5)
        #expect(knowsOld && knowsNew)
    }
}

@Suite("Ingestor")
struct IngestorTests {
    func ingest(_ ingestor: inout Ingestor, _ text: String?) -> Ingestor.Outcome {
        guard let text else { return ingestor.ingest(nil, nowMillis: nowMillis) }
        return Array(text.utf8).withUnsafeBytes { ingestor.ingest($0, nowMillis: nowMillis) }
    }

    @Test("Accepts, skips duplicates and tombstones, rejects with a reason, and counts each")
    func outcomesAndCounters() throws {
        var ingestor = Ingestor()
        guard case .accepted(let first) = self.ingest(&ingestor, event()) else {
            Issue.record("not accepted")
            return
        }
        #expect(first.eventID == "e-1")
        #expect(self.ingest(&ingestor, event()) == .duplicate(first))
        #expect(self.ingest(&ingestor, nil) == .tombstone)
        guard case .rejected(let rejection) = self.ingest(&ingestor, "{") else {
            Issue.record("not rejected")
            return
        }
        #expect(rejection.reason == .malformedJSON)
        _ = self.ingest(&ingestor, "[]")
        _ = self.ingest(&ingestor, event(["event_id": #""e-2""#]))
        var expected = Ingestor.Counters()
        expected.records = 6
        expected.accepted = 2
        expected.duplicates = 1
        expected.tombstones = 1
        expected.rejected = [.malformedJSON: 1, .badType: 1]
        expected.acceptedByKind = [2, 0, 0, 0, 0]
        #expect(ingestor.counters == expected)
        #expect(ingestor.counters.rejectedTotal == 2)
    }

    @Test("Dead-letter headers carry reason, detail and source position")
    func deadLetterHeaders() {
        let headers = DeadLetter.headers(
            for: Rejection(.badValue, "amount is negative"),
            sourceTopic: "crowdpulse.events",
            partition: 3,
            offset: 42,
            truncated: true
        )
        #expect(
            headers.map(\.name) == [
                "crowdpulse.reason", "crowdpulse.detail", "crowdpulse.source.topic", "crowdpulse.source.partition",
                "crowdpulse.source.offset", "crowdpulse.truncated",
            ]
        )
        #expect(headers.map(\.value) == ["bad_value", "amount is negative", "crowdpulse.events", "3", "42", "true"])
    }
}
