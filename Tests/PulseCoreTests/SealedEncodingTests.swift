import PulseCore
import Testing

/// A crisis detector, and each open window, is encoded once per version of its state and is a segment of its
/// own in a checkpoint: checkpoints while it does not change only name it.
@Suite("Sealed encodings: detectors and windows encoded once per version")
struct SealedEncodingTests {
    typealias Step = StateCodecTests.DetectorStep

    static func run(_ detector: inout CrisisDetector, _ step: Step) {
        switch step {
        case .observe(let record): detector.observe(record)
        case .advance(let watermark): _ = detector.advance(to: watermark)
        }
    }

    /// The detector's checkpoint: its inline bytes and segments (segmenting, as the pipeline writes).
    static func segmented(_ detector: CrisisDetector) -> (bytes: [UInt8], segments: [StateSegment]) {
        var writer = BinaryWriter()
        writer.segmenting = true
        detector.write(to: &writer)
        return (writer.bytes, writer.segments)
    }

    /// The detector's bytes as a detector read back from them writes them: an encoding made from the state
    /// itself, not from anything the detector remembered of an earlier encoding.
    static func fresh(_ bytes: [UInt8], level: EntityLevel) throws -> [UInt8] {
        var reader = BinaryReader(bytes)
        let restored = try CrisisDetector(reading: &reader, level: level, configuration: StateCodecTests.detection)
        #expect(reader.isAtEnd)
        var writer = BinaryWriter()
        restored.write(to: &writer)
        return writer.bytes
    }

    /// Byte arrays compared outside `#expect`, so that a failure prints the message, not thousands of bytes.
    static func same(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool { lhs == rhs }

    @Test("Unchanged, a detector is one segment with the same identity and bytes; each change gives a new one")
    func identityFollowsChanges() throws {
        let steps = StateCodecTests.detectorSteps
        var detector = CrisisDetector(level: .subject, configuration: StateCodecTests.detection)
        // Small at first: written inline, no segment.
        Self.run(&detector, steps[0])
        #expect(Self.segmented(detector).segments.isEmpty)

        var identities: Set<UInt64> = []
        var checked = 0
        for (index, step) in steps.enumerated().dropFirst() {
            Self.run(&detector, step)
            guard index % 97 == 0 else { continue }
            let first = Self.segmented(detector)
            let second = Self.segmented(detector)
            guard let segment = first.segments.first else { continue }
            // The whole detector is the segment; nothing else is inline.
            #expect(first.segments.count == 1 && first.bytes.isEmpty)
            #expect(second.segments.map(\.id) == [segment.id])
            #expect(Self.same(second.segments.first?.bytes ?? [], segment.bytes))
            // A new version since the last check: a new identity.
            #expect(identities.insert(segment.id).inserted, "step \(index): identity \(segment.id) reused")
            // And the bytes are the state's: the same as a detector read from them writes.
            #expect(Self.same(try Self.fresh(segment.bytes, level: .subject), segment.bytes), "step \(index)")
            #expect(segment.bytes.count >= SealedEncoding.minimumSegmentBytes)
            checked += 1
        }
        #expect(checked > 20)
    }

    @Test("A copy taken before a change keeps its own encoding, whenever either of them is encoded")
    func copiesAreIsolated() throws {
        let steps = StateCodecTests.detectorSteps
        let observes = steps.indices.filter { if case .observe = steps[$0] { true } else { false } }
        let split = observes[observes.count / 2]
        func detector(through end: Int) -> CrisisDetector {
            var detector = CrisisDetector(level: .subject, configuration: StateCodecTests.detection)
            for step in steps[..<end] { Self.run(&detector, step) }
            return detector
        }
        func bytes(_ written: (bytes: [UInt8], segments: [StateSegment])) -> [UInt8] {
            StateSegment.splice(written.segments, into: written.bytes)
        }
        // What each state encodes to, from detectors that were never copied.
        let expectedBefore = bytes(Self.segmented(detector(through: split)))
        let expectedAfter = bytes(Self.segmented(detector(through: split + 50)))
        #expect(!Self.same(expectedBefore, expectedAfter), "the steps after the split change the state")

        // The encoding computed before the copy; the copy encoded before the change; the copy encoded after.
        for order in 0..<3 {
            var original = detector(through: split)
            if order == 0 { _ = Self.segmented(original) }
            let copy = original
            var copyWritten = order == 2 ? nil : Self.segmented(copy)
            for step in steps[split..<(split + 50)] { Self.run(&original, step) }
            let originalWritten = Self.segmented(original)
            if copyWritten == nil { copyWritten = Self.segmented(copy) }
            let copyAgain = Self.segmented(copy)

            #expect(Self.same(bytes(copyWritten!), expectedBefore), "order \(order): the copy's encoding changed")
            #expect(Self.same(bytes(copyAgain), expectedBefore), "order \(order): the copy's encoding changed")
            #expect(
                Self.same(bytes(originalWritten), expectedAfter),
                "order \(order): the original kept an old encoding"
            )
            #expect(copyAgain.segments.map(\.id) == copyWritten!.segments.map(\.id))
            #expect(
                originalWritten.segments.map(\.id) != copyWritten!.segments.map(\.id),
                "order \(order): two versions share an identity"
            )
        }
    }

    @Test("Not segmenting, the same bytes are written inline")
    func inlineWhenNotSegmenting() throws {
        var detector = CrisisDetector(level: .brand, configuration: StateCodecTests.detection)
        for step in StateCodecTests.detectorSteps.prefix(3_000) { Self.run(&detector, step) }
        let segmented = Self.segmented(detector)
        var plain = BinaryWriter()
        detector.write(to: &plain)
        #expect(!segmented.segments.isEmpty)
        #expect(plain.segments.isEmpty)
        #expect(Self.same(StateSegment.splice(segmented.segments, into: segmented.bytes), plain.bytes))
    }

    @Test(
        "An encoding larger than a segment is cut into pieces, each with its own identity, kept while unchanged"
    )
    func pieces() throws {
        var detector = CrisisDetector(level: .subject, configuration: StateCodecTests.detection)
        for step in StateCodecTests.detectorSteps.prefix(3_000) { Self.run(&detector, step) }
        func written() -> (bytes: [UInt8], segments: [StateSegment]) {
            var writer = BinaryWriter()
            writer.segmenting = true
            writer.maximumSegmentBytes = 1_000
            detector.write(to: &writer)
            return (writer.bytes, writer.segments)
        }
        var plain = BinaryWriter()
        detector.write(to: &plain)
        let first = written()
        #expect(plain.bytes.count > 3_000)
        #expect(first.segments.count == (plain.bytes.count + 999) / 1_000)
        #expect(first.segments.allSatisfy { $0.byteCount <= 1_000 && $0.position == 0 })
        #expect(Set(first.segments.map(\.id)).count == first.segments.count)
        #expect(Self.same(StateSegment.splice(first.segments, into: first.bytes), plain.bytes))
        #expect(written().segments.map(\.id) == first.segments.map(\.id))
        // A writer cutting at another size gets other identities: an identity names one run of bytes.
        let whole = Self.segmented(detector)
        #expect(whole.segments.count == 1)
        #expect(Set(whole.segments.map(\.id)).isDisjoint(with: first.segments.map(\.id)))
    }

    // MARK: - Window engine

    /// Events of 50 posts from `StateCodecTests.start` on, at the given offsets (ms), decoded.
    static func events(at offsets: [Int64], seed: UInt64) -> [Event] {
        var generator = SyntheticEvents(configuration: .init(subjects: 50, brands: 4, users: 500, seed: seed))
        let decoder = EventDecoder()
        return offsets.compactMap { offset in
            try? decoder.decode(generator.next(occurredAtMillis: StateCodecTests.start + offset).json, nowMillis: nil)
                .get()
        }
    }

    /// The engine's checkpoint, segmenting: the windows' segments (in window order), and the whole bytes.
    static func windows(_ engine: WindowEngine) -> (segments: [StateSegment], whole: [UInt8]) {
        var writer = BinaryWriter()
        writer.segmenting = true
        engine.write(to: &writer)
        let windows = writer.segments.filter { if case .bytes = $0.content { true } else { false } }
        return (windows, StateSegment.splice(writer.segments, into: writer.bytes))
    }

    @Test("A window waiting out its grace period keeps its segment's identity; an event in it renews it")
    func windowInGrace() throws {
        var engine = WindowEngine(configuration: .init(window: .tumbling(60_000), graceMillis: 30_000))
        // A minute of events, then ten seconds of the next: the first window is past its end, within grace.
        for event in Self.events(at: (0..<700).map { Int64($0) * 100 }, seed: 3) { _ = engine.add(event) }
        let first = Self.windows(engine)
        #expect(first.segments.count == 2)
        // Five more seconds of the second window.
        for event in Self.events(at: (0..<50).map { 70_000 + Int64($0) * 100 }, seed: 4) { _ = engine.add(event) }
        let second = Self.windows(engine)
        #expect(second.segments.count == 2)
        #expect(second.segments.first?.id == first.segments.first?.id, "the window in grace did not change")
        #expect(second.segments.last?.id != first.segments.last?.id, "the current window changed")
        // An event of the first window, late but within grace.
        for event in Self.events(at: [59_000], seed: 5) { #expect(engine.add(event).isEmpty) }
        let third = Self.windows(engine)
        #expect(third.segments.first?.id != second.segments.first?.id, "an event in the window renews it")
        #expect(third.segments.last?.id == second.segments.last?.id)
        #expect(!Self.same(third.whole, second.whole))
    }

    @Test(
        "Windows written at every step of a stream, in both emit modes and with late events, always encode their state",
        arguments: [WindowEngine.EmitMode.final, .updates(intervalMillis: 5_000)]
    )
    func windowsStayFresh(_ emit: WindowEngine.EmitMode) throws {
        let configuration = WindowEngine.Configuration(
            window: .tumbling(20_000),
            graceMillis: 10_000,
            emit: emit,
            brands: .partials
        )
        // In order mostly; one event in seven up to 12 s late (some within grace, some past it).
        var random = SplitMix64(seed: 21)
        let offsets = (0..<3_000).map { index -> Int64 in
            let time = Int64(index) * 40
            return index % 7 == 3 ? max(0, time - Int64(random.next() % 12_000)) : time
        }
        let events = Self.events(at: offsets, seed: 6)
        var engine = WindowEngine(configuration: configuration)
        var checked = 0
        for (index, event) in events.enumerated() {
            let outputs = engine.add(event)
            // Updates emitted change the windows' revisions and dirty marks: checked right after, before an
            // event renews the windows anyway.
            let updated = outputs.contains { output in
                switch output {
                case .metrics(let record): return !record.isFinal
                case .brandPartial(_, _, _, let isFinal): return !isFinal
                case .late: return false
                }
            }
            // Written after every event, so that every kind of change meets an encoding made before it.
            defer { _ = Self.windows(engine) }
            guard updated || index % 50 == 49 else { continue }
            // What a never-encoded engine holds after the same events.
            var reference = WindowEngine(configuration: configuration)
            for event in events[...index] { _ = reference.add(event) }
            let expected = Self.windows(reference).whole
            #expect(Self.same(Self.windows(engine).whole, expected), "after event \(index)")
            checked += 1
        }
        #expect(checked >= events.count / 50)
    }
}
