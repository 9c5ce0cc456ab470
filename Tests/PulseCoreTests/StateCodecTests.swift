import PulseCore
import Testing

/// Every per-partition processing state survives a checkpoint: written at any point of a stream, read back
/// into a fresh value and run on, it produces exactly what the uninterrupted run produces.
@Suite("Processing state: binary checkpoints")
struct StateCodecTests {
    static let start: Int64 = 1_795_687_200_000

    /// The decoder read less than it was given.
    struct TrailingBytes: Error {
        var offset: Int
        var count: Int
    }

    /// Reads one value with `body` and requires that it consumed every byte.
    static func decode<T>(
        _ bytes: [UInt8],
        _ body: (inout BinaryReader) throws(BinaryDecodingError) -> T
    ) throws -> T {
        var reader = BinaryReader(bytes)
        let value = try body(&reader)
        guard reader.isAtEnd else { throw TrailingBytes(offset: reader.offset, count: bytes.count) }
        return value
    }

    static func encode(_ body: (inout BinaryWriter) -> Void) -> [UInt8] {
        var writer = BinaryWriter()
        body(&writer)
        return writer.bytes
    }

    /// `count` distinct split points in `1..<steps`, drawn from `seed`.
    static func randomSplits(_ count: Int, steps: Int, seed: UInt64) -> [Int] {
        var random = SplitMix64(seed: seed)
        var splits = Set<Int>()
        while splits.count < count { splits.insert(1 + Int(random.next() % UInt64(steps - 1))) }
        return splits.sorted()
    }

    /// Runs `steps` through `initial` uninterrupted, then for each split point from the state at that
    /// point, written and read back into a fresh value. The outputs before the split followed by those of
    /// the restored value must equal the uninterrupted outputs, the restored value must write the same
    /// bytes as the one it was read from, and the two runs must end in the same state (bytes, and what
    /// `observe` reads through the public API: fields a format forgot on both sides show there).
    ///
    /// The state at a split is a copy taken during the uninterrupted run: the states are values, so this is
    /// the state a fresh run to that point would reach.
    static func checkSplits<State, Step, Output: Equatable>(
        _ steps: [Step],
        splits: [Int],
        initial: State,
        run: (inout State, Step) -> [Output],
        finish: (inout State) -> [Output],
        write: (State) -> [UInt8],
        read: ([UInt8]) throws -> State,
        observe: (State) -> String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        var state = initial
        var expected: [Output] = []
        var snapshots: [Int: (state: State, produced: Int)] = [:]
        let wanted = Set(splits)
        for (index, step) in steps.enumerated() {
            if wanted.contains(index) { snapshots[index] = (state, expected.count) }
            expected += run(&state, step)
        }
        if wanted.contains(steps.count) { snapshots[steps.count] = (state, expected.count) }
        expected += finish(&state)
        let expectedEnd = write(state)
        let expectedView = observe(state)

        for split in splits {
            let snapshot = try #require(snapshots[split], sourceLocation: sourceLocation)
            let bytes = write(snapshot.state)
            var restored = try read(bytes)
            let sameBytes = write(restored) == bytes
            #expect(sameBytes, "split \(split): the restored state writes other bytes", sourceLocation: sourceLocation)
            #expect(observe(restored) == observe(snapshot.state), "split \(split)", sourceLocation: sourceLocation)
            var outputs = Array(expected[..<snapshot.produced])
            for step in steps[split...] { outputs += run(&restored, step) }
            outputs += finish(&restored)
            #expect(outputs.count == expected.count, "split \(split)", sourceLocation: sourceLocation)
            if let index = (0..<min(outputs.count, expected.count)).first(where: { outputs[$0] != expected[$0] }) {
                Issue.record(
                    """
                    split \(split): output \(index) of \(expected.count) differs
                    restored:      \(String(describing: outputs[index]).prefix(600))
                    uninterrupted: \(String(describing: expected[index]).prefix(600))
                    """,
                    sourceLocation: sourceLocation
                )
            }
            let sameEnd = write(restored) == expectedEnd
            #expect(sameEnd, "split \(split): end states differ", sourceLocation: sourceLocation)
            #expect(
                observe(restored) == expectedView,
                "split \(split): end states differ",
                sourceLocation: sourceLocation
            )
        }
    }

    /// Every proper prefix of `bytes` fails to decode; random corruption never traps.
    static func checkDamage<T>(
        _ bytes: [UInt8],
        flips: Int = 1_000,
        seed: UInt64,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (inout BinaryReader) throws(BinaryDecodingError) -> T
    ) {
        #expect((try? Self.decode(bytes, body)) != nil, "the intact state decodes", sourceLocation: sourceLocation)
        let stride = max(1, bytes.count / 1_500)
        for length in Swift.stride(from: 0, to: bytes.count, by: stride) {
            #expect(throws: BinaryDecodingError.self, "prefix of \(length) bytes", sourceLocation: sourceLocation) {
                var reader = BinaryReader(Array(bytes.prefix(length)))
                _ = try body(&reader)
            }
        }
        var random = SplitMix64(seed: seed)
        for round in 0..<flips {
            var damaged = bytes
            // One byte replaced, a few bits flipped, or a run of noise.
            switch round % 3 {
            case 0:
                damaged[Int(random.next() % UInt64(damaged.count))] = UInt8(truncatingIfNeeded: random.next())
            case 1:
                for _ in 0..<3 {
                    damaged[Int(random.next() % UInt64(damaged.count))] ^= 1 << UInt8(random.next() % 8)
                }
            default:
                let from = Int(random.next() % UInt64(damaged.count))
                for index in from..<min(damaged.count, from + 16) {
                    damaged[index] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            var reader = BinaryReader(damaged)
            _ = try? body(&reader)  // must not trap
        }
    }
}

// MARK: - Window engine

extension StateCodecTests {
    enum EngineStep: Sendable {
        case event(Event, wall: Int64)
        /// The wall clock moves on with no event (the idle check of a silent partition).
        case idle(wall: Int64)
    }

    struct EngineCase: Sendable, CustomTestStringConvertible {
        var name: String
        var window: WindowSpec
        var emit: WindowEngine.EmitMode
        var brands: WindowEngine.BrandHandling = .local

        var testDescription: String { self.name }

        var configuration: WindowEngine.Configuration {
            WindowEngine.Configuration(
                window: self.window,
                graceMillis: 10_000,
                idleCloseMillis: 30_000,
                emit: self.emit,
                brands: self.brands,
                uniqueExactLimit: 12,  // some counters pass to the sketch
                cascadeCapacity: 4,  // rings wrap
                cascadeTTLMillis: 60_000  // idle cascades are swept
            )
        }
    }

    static let engineCases = [
        EngineCase(name: "tumbling, final", window: .tumbling(10_000), emit: .final),
        EngineCase(name: "hopping, final", window: .hopping(size: 30_000, step: 10_000), emit: .final),
        EngineCase(name: "tumbling, updates", window: .tumbling(10_000), emit: .updates(intervalMillis: 3_000)),
        EngineCase(
            name: "hopping, updates, brand partials",
            window: .hopping(size: 20_000, step: 5_000),
            emit: .updates(intervalMillis: 4_000),
            brands: .partials
        ),
    ]

    /// Synthetic events (comments in several languages, a quarter of them negative; shares re-sharing
    /// earlier ones; purchases) mostly in order, some out of order within the grace, some late, some
    /// delivered twice, some with an upstream sentiment; now and then the partition falls silent long
    /// enough for idle close.
    static func engineSteps(seed: UInt64, count: Int) -> [EngineStep] {
        var generator = SyntheticEvents(configuration: .init(subjects: 12, brands: 5, users: 300, seed: seed))
        var random = SplitMix64(seed: seed &* 0x9E37_79B9)
        let decoder = EventDecoder()
        var steps: [EngineStep] = []
        var accepted: [Event] = []
        var wall: Int64 = 1_700_000_000_000
        var time = Self.start
        for index in 0..<count {
            wall += 100
            time += 100
            if index % 700 == 699 {
                wall += 45_000
                steps.append(.idle(wall: wall))
            }
            // Now and then stream time jumps (the watermark passes window ends unevenly).
            if index % 150 == 149 { time += 2_000 + Int64(random.next() % 20_000) }
            let roll = random.next() % 100
            if roll < 3, !accepted.isEmpty {
                steps.append(.event(accepted[Int(random.next() % UInt64(accepted.count))], wall: wall))
                continue
            }
            var at = time
            if roll < 9 {
                at -= Int64(random.next() % 9_000)
            } else if roll < 11 {
                at -= 40_000 + Int64(random.next() % 120_000)
            }
            let json = generator.next(occurredAtMillis: at).json
            guard case .success(var event) = decoder.decode(json, nowMillis: nil) else { continue }
            if event.kind == .comment && roll == 99 { event.sentiment = -0.9 }
            accepted.append(event)
            steps.append(.event(event, wall: wall))
        }
        return steps
    }

    /// What the public API shows of an engine.
    static func view(_ engine: WindowEngine) -> String {
        "stream time \(engine.maxEventTime.map(String.init) ?? "none"), watermark \(engine.watermark), "
            + "\(engine.lateCount) late, \(engine.openWindowCount) open windows of \(engine.openEntityCount) entities, "
            + "\(engine.cascadeSubjects) cascades"
    }

    @Test("Window engine: a checkpoint anywhere changes no output", arguments: Self.engineCases)
    func windowEngineSplits(_ engineCase: EngineCase) throws {
        let configuration = engineCase.configuration
        let scorer = MultilingualSentimentScorer()
        let steps = Self.engineSteps(seed: 17, count: 2_500)
        let run = { (engine: inout WindowEngine, step: EngineStep) -> [WindowEngine.Output] in
            switch step {
            case .event(let event, let wall): return engine.add(event, nowWall: wall)
            case .idle(let wall): return engine.idle(nowWall: wall)
            }
        }

        // The stream exercises what the state holds.
        var engine = WindowEngine(configuration: configuration, scorer: scorer)
        var outputs: [WindowEngine.Output] = []
        for step in steps { outputs += run(&engine, step) }
        #expect(outputs.contains { if case .late = $0 { return true } else { return false } })
        let aggregates = outputs.compactMap { output -> WindowAggregate? in
            switch output {
            case .metrics(let record): return record.aggregate
            case .brandPartial(_, _, let aggregate, _): return aggregate
            case .late: return nil
            }
        }
        #expect(aggregates.contains { $0.negative > 0 && $0.crisis?.comments.isEmpty == false })
        #expect(aggregates.contains { $0.sharesByDepth.keys.contains { $0 >= 2 } })
        #expect(aggregates.contains { $0.purchases > 0 && $0.users.isApproximate })
        #expect(outputs.contains { if case .metrics(let record) = $0 { record.previousShares != nil } else { false } })
        if case .updates = configuration.emit {
            #expect(outputs.contains { if case .metrics(let record) = $0 { record.revision > 1 } else { false } })
        }
        if configuration.brands == .partials {
            #expect(outputs.contains { if case .brandPartial(_, _, _, false) = $0 { true } else { false } })
        }

        // Also right where the partition has fallen silent, before the idle check.
        let silent = try #require(steps.firstIndex { if case .idle = $0 { true } else { false } })
        let splits = [0, silent, steps.count] + Self.randomSplits(5, steps: steps.count, seed: 5)
        try Self.checkSplits(
            steps,
            splits: splits,
            initial: WindowEngine(configuration: configuration, scorer: scorer),
            run: run,
            finish: { $0.closeAll() },
            write: { engine in Self.encode { engine.write(to: &$0) } },
            read: { bytes in
                try Self.decode(bytes) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try WindowEngine(reading: &reader, configuration: configuration, scorer: scorer)
                }
            },
            observe: Self.view
        )
    }

    @Test("Window engine: the schedule of sweeps survives a checkpoint at every point of a hand-built stream")
    func windowEngineSweepSchedule() throws {
        let configuration = WindowEngine.Configuration(
            window: .tumbling(10_000),
            graceMillis: 0,
            cascadeTTLMillis: 3_000
        )
        func event(_ id: String, _ kind: Event.Kind, at: Int64, _ subject: String, parent: String? = nil) -> EngineStep
        {
            let time = Self.start + at
            let event = Event(
                eventID: id,
                kind: kind,
                occurredAt: time,
                subjectID: subject,
                userID: "u",
                parentEventID: parent
            )
            return .event(event, wall: time)
        }
        // The window [0, 10 s) closes at 19.9 s and sweeps; [10 s, 20 s) closes at 25 s, less than a step later,
        // so that sweep is skipped and post-a's cascade (idle since 19.95 s, past the 3 s TTL by then) is still
        // there when the re-share comes: depth 2. Sweeping there would forget it: depth 1.
        let steps = [
            event("e1", .like, at: 1_000, "post-b"),
            event("e2", .like, at: 19_900, "post-b"),
            event("p", .share, at: 19_950, "post-a"),
            event("e3", .like, at: 25_000, "post-b"),
            event("q", .share, at: 25_100, "post-a", parent: "p"),
        ]
        var engine = WindowEngine(configuration: configuration)
        var outputs: [WindowEngine.Output] = []
        for case .event(let event, let wall) in steps { outputs += engine.add(event, nowWall: wall) }
        outputs += engine.closeAll()
        #expect(
            outputs.contains {
                if case .metrics(let record) = $0 { record.aggregate.sharesByDepth == [2: 1] } else { false }
            }
        )
        try Self.checkSplits(
            steps,
            splits: Array(0...steps.count),
            initial: WindowEngine(configuration: configuration),
            run: { engine, step in
                guard case .event(let event, let wall) = step else { return [] }
                return engine.add(event, nowWall: wall)
            },
            finish: { $0.closeAll() },
            write: { engine in Self.encode { engine.write(to: &$0) } },
            read: { bytes in
                try Self.decode(bytes) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try WindowEngine(
                        reading: &reader,
                        configuration: configuration,
                        scorer: MultilingualSentimentScorer()
                    )
                }
            },
            observe: Self.view
        )
    }

    @Test("Window engine: truncated or damaged state is an error, never a crash")
    func windowEngineDamage() throws {
        var configuration = Self.engineCases[3].configuration
        configuration.uniqueExactLimit = 1_000  // no 4 KiB sketches: a smaller state, many more prefixes per second
        var engine = WindowEngine(configuration: configuration)
        for case .event(let event, let wall) in Self.engineSteps(seed: 3, count: 300) {
            _ = engine.add(event, nowWall: wall)
        }
        #expect(engine.openEntityCount > 0 && engine.cascadeSubjects > 0)
        let bytes = Self.encode { engine.write(to: &$0) }
        Self.checkDamage(bytes, seed: 1) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
            try WindowEngine(reading: &reader, configuration: configuration, scorer: MultilingualSentimentScorer())
        }
    }
}

// MARK: - Deduplicator

extension StateCodecTests {
    struct DedupOutcome: Equatable {
        var duplicate: Bool
        var remembered: Int
        var evictedEarly: Int
    }

    /// Ids mostly new, some repeated within the horizon, some repeated long after, some events older than
    /// the horizon; more ids than the entry limit, so buckets are dropped early too.
    static func dedupSteps(seed: UInt64, count: Int) -> [(id: String, at: Int64)] {
        var random = SplitMix64(seed: seed)
        var steps: [(id: String, at: Int64)] = []
        for index in 0..<count {
            var at = Self.start + Int64(index) * 50
            var id = "ev-\(index)"
            switch random.next() % 100 {
            case 0..<10: id = "ev-\(max(0, index - 1 - Int(random.next() % 200)))"
            case 10..<13: id = "ev-\(Int(random.next() % UInt64(index + 1)))"
            case 13..<15: at -= 70_000 + Int64(random.next() % 60_000)
            case 15..<20: at -= Int64(random.next() % 15_000)
            default: break
            }
            steps.append((id, at))
        }
        return steps
    }

    @Test("Deduplicator: a checkpoint anywhere changes no verdict")
    func deduplicatorSplits() throws {
        let configuration = Deduplicator.Configuration(horizonMillis: 60_000, maxEntries: 700, bucketMillis: 10_000)
        let steps = Self.dedupSteps(seed: 23, count: 6_000)
        let run = { (deduplicator: inout Deduplicator, step: (id: String, at: Int64)) -> [DedupOutcome] in
            let duplicate = deduplicator.isDuplicate(eventID: step.id, occurredAt: step.at)
            return [
                DedupOutcome(
                    duplicate: duplicate,
                    remembered: deduplicator.count,
                    evictedEarly: deduplicator.evictedEarly
                )
            ]
        }
        var deduplicator = Deduplicator(configuration: configuration)
        let outcomes = steps.flatMap { run(&deduplicator, $0) }
        #expect(outcomes.filter(\.duplicate).count > 300)
        #expect(deduplicator.evictedEarly > 0)

        try Self.checkSplits(
            steps,
            splits: [0, steps.count] + Self.randomSplits(5, steps: steps.count, seed: 6),
            initial: Deduplicator(configuration: configuration),
            run: run,
            finish: { _ in [] },
            write: { deduplicator in Self.encode { deduplicator.write(to: &$0) } },
            read: { bytes in
                try Self.decode(bytes) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try Deduplicator(reading: &reader, configuration: configuration)
                }
            },
            observe: { "\($0.count) remembered, \($0.evictedEarly) evicted early" }
        )
    }

    @Test("Deduplicator: a checkpoint keeps its instant while ids are recorded after it, across full blocks")
    func deduplicatorCheckpointIsolation() throws {
        let configuration = Deduplicator.Configuration(
            horizonMillis: 120_000,
            maxEntries: 100_000,
            bucketMillis: 60_000
        )
        var deduplicator = Deduplicator(configuration: configuration)
        // One bucket of 10 000 ids: two full blocks of the bucket's log and part of a third.
        var repeated = 0
        for index in 0..<10_000 where deduplicator.isDuplicate(eventID: "a-\(index)", occurredAt: 1_000 + Int64(index))
        {
            repeated += 1
        }
        let checkpoint = deduplicator.checkpoint
        let atCheckpoint = Self.encode { deduplicator.write(to: &$0) }
        // After it: the third block fills, a fourth starts, and a second bucket opens.
        for index in 0..<7_000
        where deduplicator.isDuplicate(eventID: "b-\(index)", occurredAt: 30_000 + Int64(index) * 10) {
            repeated += 1
        }
        #expect(repeated == 0)
        #expect(Self.encode { checkpoint.write(to: &$0) } == atCheckpoint)
        #expect(checkpoint.entries == 10_000)

        let now = Self.encode { deduplicator.write(to: &$0) }
        var restored = try Self.decode(now) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
            try Deduplicator(reading: &reader, configuration: configuration)
        }
        #expect(restored.count == 17_000)
        #expect(Self.encode { restored.write(to: &$0) } == now)
        var repeats = 0
        for index in 0..<10_000 where restored.isDuplicate(eventID: "a-\(index)", occurredAt: 50_000) { repeats += 1 }
        for index in 0..<7_000 where restored.isDuplicate(eventID: "b-\(index)", occurredAt: 50_000) { repeats += 1 }
        #expect(repeats == 17_000)
        // Three minutes on, the first bucket (13 000 ids over four blocks) is forgotten; the second is not.
        let new = restored.isDuplicate(eventID: "c-0", occurredAt: 181_000)
        #expect(!new)
        #expect(restored.count == 4_001)
        let forgotten = restored.isDuplicate(eventID: "a-4097", occurredAt: 181_000)
        let remembered = restored.isDuplicate(eventID: "b-6999", occurredAt: 181_000)
        #expect(!forgotten)
        #expect(remembered)
    }

    @Test("Deduplicator: truncated or damaged state is an error, never a crash")
    func deduplicatorDamage() {
        let configuration = Deduplicator.Configuration(horizonMillis: 60_000, maxEntries: 700, bucketMillis: 10_000)
        var deduplicator = Deduplicator(configuration: configuration)
        for step in Self.dedupSteps(seed: 4, count: 400) {
            _ = deduplicator.isDuplicate(eventID: step.id, occurredAt: step.at)
        }
        let bytes = Self.encode { deduplicator.write(to: &$0) }
        Self.checkDamage(bytes, seed: 2) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
            try Deduplicator(reading: &reader, configuration: configuration)
        }
    }
}

// MARK: - Brand merger

extension StateCodecTests {
    enum MergerStep: Sendable {
        case add(brand: String, windowStart: Int64, aggregate: WindowAggregate, source: Int32, isFinal: Bool)
        case advance(source: Int32, watermark: Int64, idle: Bool)
        case markIdle(source: Int32)
    }

    /// What two partitions' engines send the brand stage, randomly interleaved; a third source is silent
    /// until marked idle, and now and then an old partial arrives again after its window closed.
    static func mergerSteps(_ configuration: WindowEngine.Configuration, seed: UInt64) -> [MergerStep] {
        var engineConfiguration = configuration
        engineConfiguration.brands = .partials
        var engines = [
            WindowEngine(configuration: engineConfiguration), WindowEngine(configuration: engineConfiguration),
        ]
        var partitions: [[Event]] = [[], []]
        for case .event(let event, _) in Self.engineSteps(seed: seed, count: 2_000) {
            partitions[Int(stableHash(event.subjectID) % 2)].append(event)
        }
        var steps: [MergerStep] = []
        func deliver(_ outputs: [WindowEngine.Output], _ source: Int, idle: Bool = false) {
            for case .brandPartial(let brand, let windowStart, let aggregate, let isFinal) in outputs {
                steps.append(
                    .add(
                        brand: brand,
                        windowStart: windowStart,
                        aggregate: aggregate,
                        source: Int32(source),
                        isFinal: isFinal
                    )
                )
            }
            steps.append(.advance(source: Int32(source), watermark: engines[source].watermark, idle: idle))
        }
        var random = SplitMix64(seed: seed)
        var positions = [0, 0]
        while positions[0] < partitions[0].count || positions[1] < partitions[1].count {
            var side = Int(random.next() % 2)
            if positions[side] >= partitions[side].count { side = 1 - side }
            for _ in 0..<(1 + Int(random.next() % 30)) where positions[side] < partitions[side].count {
                deliver(engines[side].add(partitions[side][positions[side]]), side)
                positions[side] += 1
            }
            if random.next() % 10 == 0 { steps.append(.markIdle(source: 2)) }
            // The first partial again, long after its window closed.
            if random.next() % 12 == 0, let first = steps.first(where: { if case .add = $0 { true } else { false } }) {
                steps.append(first)
            }
        }
        for side in 0..<2 { deliver(engines[side].closeAll(), side, idle: true) }
        return steps
    }

    @Test(
        "Brand merger: a checkpoint anywhere changes no output",
        arguments: [Self.engineCases[0], Self.engineCases[3]]
    )
    func brandMergerSplits(_ engineCase: EngineCase) throws {
        let configuration = engineCase.configuration
        let steps = Self.mergerSteps(configuration, seed: 29)
        let run = { (merger: inout BrandMerger, step: MergerStep) -> [MetricsRecord] in
            switch step {
            case .add(let brand, let windowStart, let aggregate, let source, let isFinal):
                return merger.add(
                    brand: brand,
                    windowStart: windowStart,
                    aggregate: aggregate,
                    source: source,
                    isFinal: isFinal
                )
            case .advance(let source, let watermark, let idle):
                return merger.advance(source: source, watermark: watermark, idle: idle)
            case .markIdle(let source):
                return merger.markIdle(source: source)
            }
        }
        var merger = BrandMerger(configuration: configuration, sources: [0, 1, 2])
        let records = steps.flatMap { run(&merger, $0) } + merger.closeAll()
        #expect(records.filter(\.isFinal).count > 50)
        #expect(records.contains { $0.previousShares != nil })
        #expect(merger.latePartials > 0)

        try Self.checkSplits(
            steps,
            splits: [0, steps.count] + Self.randomSplits(5, steps: steps.count, seed: 7),
            initial: BrandMerger(configuration: configuration, sources: [0, 1, 2]),
            run: run,
            finish: { $0.closeAll() },
            write: { merger in Self.encode { merger.write(to: &$0) } },
            read: { bytes in
                try Self.decode(bytes) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try BrandMerger(reading: &reader, configuration: configuration)
                }
            },
            observe: { merger in
                "closed through \(merger.closedThrough), \(merger.latePartials) late, active \(merger.activeSources), "
                    + "\(merger.openWindowCount) open"
            }
        )
    }

    @Test("Brand merger: truncated or damaged state is an error, never a crash")
    func brandMergerDamage() {
        var configuration = Self.engineCases[3].configuration
        configuration.uniqueExactLimit = 1_000
        var merger = BrandMerger(configuration: configuration, sources: [0, 1, 2])
        for step in Self.mergerSteps(configuration, seed: 5).prefix(400) {
            switch step {
            case .add(let brand, let windowStart, let aggregate, let source, let isFinal):
                merger.add(
                    brand: brand,
                    windowStart: windowStart,
                    aggregate: aggregate,
                    source: source,
                    isFinal: isFinal
                )
            case .advance(let source, let watermark, let idle):
                _ = merger.advance(source: source, watermark: watermark, idle: idle)
            case .markIdle(let source):
                _ = merger.markIdle(source: source)
            }
        }
        #expect(merger.openWindowCount > 0)
        let bytes = Self.encode { merger.write(to: &$0) }
        Self.checkDamage(bytes, seed: 3) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
            try BrandMerger(reading: &reader, configuration: configuration)
        }
    }
}

// MARK: - Crisis detector

extension StateCodecTests {
    enum DetectorStep: Sendable {
        case observe(MetricsRecord)
        case advance(to: Int64)
    }

    /// The demo's windows and detection (as in `IncidentScriptTests`), at a tenth of its background rate.
    static let detection = CrisisDetector.Configuration(
        windowMillis: 60_000,
        stepMillis: 10_000,
        lifecycle: .init(forMillis: 10_000, keepFiringForMillis: 60_000, cooldownMillis: 120_000),
        idleTTLMillis: 120_000,  // idle entities are forgotten
        maxEntities: 600  // and the cap evicts
    )

    /// What the detectors see of the demo's scripted crises (an organic one and a coordinated attack) on
    /// synthetic background traffic: final metric records and watermarks, fed as `Replay` feeds them. Four
    /// brands, so that the crisis post stands out from its brand's share and fires at the subject level too.
    static let detectorSteps: [DetectorStep] = {
        let origin = Self.start
        var engine = WindowEngine(
            configuration: .init(window: .tumbling(10_000), graceMillis: 5_000, idleCloseMillis: 10_000)
        )
        var background = SyntheticEvents(configuration: .init(subjects: 2_000, brands: 4, seed: 8))
        let script = IncidentScript.crises(origin: origin, brands: 4)
        let decoder = EventDecoder()
        var steps: [DetectorStep] = []
        var latestEnd = Int64.min
        func take(_ outputs: [WindowEngine.Output]) {
            for case .metrics(let record) in outputs where record.isFinal {
                steps.append(.observe(record))
                latestEnd = max(latestEnd, record.windowEnd)
            }
        }
        func feed(_ json: String) {
            guard case .success(let event) = decoder.decode(json, nowMillis: nil) else { return }
            let outputs = engine.add(event)
            take(outputs)
            if !outputs.isEmpty { steps.append(.advance(to: engine.watermark)) }
        }
        for millisecond in stride(from: Int64(0), to: 540_000, by: 100) {
            for event in script.events(from: millisecond, to: millisecond + 100) { feed(event.json) }
            for step in 0..<5 { feed(background.next(occurredAtMillis: origin + millisecond + Int64(step) * 20).json) }
        }
        take(engine.closeAll())
        steps.append(.advance(to: latestEnd))
        return steps
    }()

    /// Three days of per-minute records of four posts with a daily rhythm (so that the hourly history and
    /// the seasonal baseline come into play), then a wave of negative comments on one of them.
    static let historySteps: [DetectorStep] = {
        var random = SplitMix64(seed: 12)
        var steps: [DetectorStep] = []
        let minute: Int64 = 60_000
        let wave = (2 * 1_440 + 14 * 60)..<(2 * 1_440 + 14 * 60 + 25)
        for index in 0..<(3 * 1_440) {
            let windowStart = Self.start + Int64(index) * minute
            let evening = (index / 60) % 24 >= 18
            for post in 0..<4 {
                var aggregate = WindowAggregate()
                aggregate.brand = post == 3 ? "globex" : "acme"
                aggregate.scored = 2 + Int(random.next() % 4) + (evening ? 3 : 0)
                aggregate.negative = Int(random.next() % UInt64(aggregate.scored + 1)) / 3
                if post == 1 && wave.contains(index) {
                    aggregate.scored += 30
                    aggregate.negative += 28
                }
                let record = MetricsRecord(
                    key: EntityKey(.subject, "post-\(post)"),
                    windowStart: windowStart,
                    windowEnd: windowStart + minute,
                    isFinal: true,
                    revision: 0,
                    aggregate: aggregate,
                    previousShares: nil
                )
                steps.append(.observe(record))
            }
            steps.append(.advance(to: windowStart + minute))
        }
        return steps
    }()

    /// Runs ``checkSplits(_:splits:initial:run:finish:write:read:observe:sourceLocation:)`` for a detector,
    /// with splits at random, while an alert is pending, while one fires, and in a cooldown.
    static func checkDetectorSplits(
        _ steps: [DetectorStep],
        level: EntityLevel,
        configuration: CrisisDetector.Configuration,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (detector: CrisisDetector, events: [CrisisDetector.AlertEvent]) {
        let run = { (detector: inout CrisisDetector, step: DetectorStep) -> [CrisisDetector.AlertEvent] in
            switch step {
            case .observe(let record):
                detector.observe(record)
                return []
            case .advance(let watermark):
                return detector.advance(to: watermark)
            }
        }

        // One pass to find where alerts fire and resolve.
        var detector = CrisisDetector(level: level, configuration: configuration)
        var events: [CrisisDetector.AlertEvent] = []
        var firingSpans: [(from: Int, to: Int)] = []
        var firingSince: [String: Int] = [:]
        var beforeFiring: Int?
        var afterResolve: Int?
        var lastAdvance = 0
        for (index, step) in steps.enumerated() {
            let produced = run(&detector, step)
            events += produced
            for event in produced {
                let key = "\(event.alertname) \(event.entity)"
                switch event.change {
                case .firing:
                    firingSince[key] = index + 1
                    // Evaluated at the previous step boundary, the alert was pending.
                    beforeFiring = beforeFiring ?? lastAdvance + 1
                case .escalated:
                    break
                case .resolved:
                    if let since = firingSince.removeValue(forKey: key) { firingSpans.append((since, index)) }
                    afterResolve = afterResolve ?? index + 1
                }
            }
            if case .advance = step { lastAdvance = index }
        }
        let span = try #require(firingSpans.first, "an alert fires and resolves", sourceLocation: sourceLocation)
        let whileFiring = (span.from + span.to) / 2
        let inCooldown = try #require(afterResolve, sourceLocation: sourceLocation)
        let pending = try #require(beforeFiring, sourceLocation: sourceLocation)

        var atSplit = CrisisDetector(level: level, configuration: configuration)
        for step in steps[..<whileFiring] { _ = run(&atSplit, step) }
        #expect(!atSplit.firing.isEmpty, "the split at \(whileFiring) falls while an alert fires")

        let splits =
            [0, pending, whileFiring, inCooldown, steps.count] + Self.randomSplits(5, steps: steps.count, seed: 8)
        try Self.checkSplits(
            steps,
            splits: Array(Set(splits)).sorted(),
            initial: CrisisDetector(level: level, configuration: configuration),
            run: run,
            finish: { _ in [] },
            write: { detector in Self.encode { detector.write(to: &$0) } },
            read: { bytes in
                try Self.decode(bytes) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                    try CrisisDetector(reading: &reader, level: level, configuration: configuration)
                }
            },
            observe: { detector in
                "\(detector.entityCount) entities, evaluated through \(detector.evaluatedThrough), "
                    + "\(detector.evictions) evicted, firing \(detector.firing)"
            },
            sourceLocation: sourceLocation
        )
        return (detector, events)
    }

    @Test(
        "Crisis detector: a checkpoint anywhere, even while an alert is pending or fires, changes no alert",
        arguments: EntityLevel.allCases
    )
    func crisisDetectorSplits(_ level: EntityLevel) throws {
        let (detector, events) = try Self.checkDetectorSplits(
            Self.detectorSteps,
            level: level,
            configuration: Self.detection
        )
        #expect(events.contains { $0.alertname == CrisisDetector.campaignName })
        if level == .subject { #expect(detector.evictions > 0) }
    }

    @Test(
        "Crisis detector: many windows closed at once (a consumer catching up) give the alerts one at a time does",
        arguments: EntityLevel.allCases,
        [3, 17]
    )
    func crisisDetectorBatching(_ level: EntityLevel, every: Int) {
        func run(advancingEvery every: Int) -> [CrisisDetector.AlertEvent] {
            var detector = CrisisDetector(level: level, configuration: Self.detection)
            var events: [CrisisDetector.AlertEvent] = []
            var skipped = 0
            var latest = Int64.min
            for step in Self.detectorSteps {
                switch step {
                case .observe(let record):
                    detector.observe(record)
                case .advance(let watermark):
                    latest = max(latest, watermark)
                    skipped += 1
                    if skipped % every == 0 { events += detector.advance(to: latest) }
                }
            }
            return events + detector.advance(to: latest)
        }
        let steady = run(advancingEvery: 1)
        let batched = run(advancingEvery: every)
        #expect(steady.contains { $0.change == .firing })
        // Compared in brief first: a failure prints the alerts, not every sampled comment.
        func brief(_ event: CrisisDetector.AlertEvent) -> String {
            let evaluation = event.evaluation
            return "\(event.change) \(event.alertname) \(event.entity) \(event.severity) at \(event.at): "
                + "\(evaluation.negative)/\(evaluation.scored), baseline share \(evaluation.baselineShare), "
                + "verified \(evaluation.authenticity.verifiedCustomerShare)"
        }
        #expect(batched.map(brief) == steady.map(brief))
        if batched.map(brief) == steady.map(brief) { #expect(batched == steady) }
    }

    @Test("Crisis detector: over days of history (seasonal baselines), a checkpoint anywhere changes no alert")
    func crisisDetectorHistorySplits() throws {
        let (_, events) = try Self.checkDetectorSplits(
            Self.historySteps,
            level: .subject,
            configuration: CrisisDetector.Configuration()
        )
        #expect(events.contains { $0.entity == "post-1" && $0.evaluation.historyHours >= 48 })
    }

    @Test("Crisis detector: truncated, damaged or other-level state is an error, never a crash")
    func crisisDetectorDamage() throws {
        var detector = CrisisDetector(level: .brand, configuration: Self.detection)
        var firing = false
        for step in Self.detectorSteps where !firing {
            switch step {
            case .observe(let record): detector.observe(record)
            case .advance(let watermark): firing = detector.advance(to: watermark).contains { $0.change == .firing }
            }
        }
        #expect(firing)
        let bytes = Self.encode { detector.write(to: &$0) }
        Self.checkDamage(bytes, flips: 600, seed: 4) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
            try CrisisDetector(reading: &reader, level: .brand, configuration: Self.detection)
        }
        #expect(throws: BinaryDecodingError.self) {
            var reader = BinaryReader(bytes)
            _ = try CrisisDetector(reading: &reader, level: .subject, configuration: Self.detection)
        }
    }
}

// MARK: - Size and speed

extension StateCodecTests {
    static func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        let elapsed = try ContinuousClock().measure(body)
        return Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15
    }

    @Test("100 000 entities: bytes and time of a checkpoint (printed), entity counts round-trip")
    func sizeAndSpeed() throws {
        let entities = 100_000
        let minute: Int64 = 60_000
        let start = Self.start

        // A detector with 100 000 subjects, each with a bucket and an hour of history.
        var detector = CrisisDetector(level: .subject)
        for index in 0..<entities {
            var aggregate = WindowAggregate()
            aggregate.brand = "brand-\(index % 200)"
            aggregate.scored = 3 + index % 5
            aggregate.negative = index % 3
            detector.observe(
                MetricsRecord(
                    key: EntityKey(.subject, "post-\(index)"),
                    windowStart: start + Int64(index % 5) * minute,
                    windowEnd: start + Int64(index % 5 + 1) * minute,
                    isFinal: true,
                    revision: 0,
                    aggregate: aggregate,
                    previousShares: nil
                )
            )
        }
        _ = detector.advance(to: start + 5 * minute)
        var detectorBytes: [UInt8] = []
        let writeDetector = Self.milliseconds { detectorBytes = Self.encode { detector.write(to: &$0) } }
        var restoredDetector: CrisisDetector?
        let readDetector = try Self.milliseconds {
            restoredDetector = try Self.decode(detectorBytes) {
                (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try CrisisDetector(reading: &reader, level: .subject, configuration: .init())
            }
        }
        #expect(restoredDetector?.entityCount == entities)
        #expect(restoredDetector?.evaluatedThrough == detector.evaluatedThrough)

        // An engine with one open window for each of 100 000 subjects (and their 200 brands).
        var engine = WindowEngine()
        for index in 0..<entities {
            let event = Event(
                eventID: "ev-\(index)",
                kind: index % 10 == 0 ? .share : .like,
                occurredAt: start + Int64(index % 50_000),
                subjectID: "post-\(index)",
                userID: "u-\(index % 7_919)",
                brand: "brand-\(index % 200)",
                user: Event.User(followers: Int64(index % 1_000))
            )
            _ = engine.add(event)
        }
        var engineBytes: [UInt8] = []
        let writeEngine = Self.milliseconds { engineBytes = Self.encode { engine.write(to: &$0) } }
        var restoredEngine: WindowEngine?
        let readEngine = try Self.milliseconds {
            restoredEngine = try Self.decode(engineBytes) { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try WindowEngine(reading: &reader, configuration: .init(), scorer: MultilingualSentimentScorer())
            }
        }
        #expect(engine.openEntityCount == entities + 200)
        #expect(restoredEngine?.openEntityCount == engine.openEntityCount)
        #expect(restoredEngine?.openWindowCount == engine.openWindowCount)
        #expect(restoredEngine?.cascadeSubjects == engine.cascadeSubjects)

        func report(_ name: String, _ bytes: Int, _ count: Int, _ write: Double, _ read: Double) {
            let perEntity = Double(bytes) / Double(count)
            print(
                "\(name): \(count) entities, \(bytes) bytes (\(Int(perEntity.rounded())) per entity), "
                    + "write \(Int(write.rounded())) ms, read \(Int(read.rounded())) ms"
            )
        }
        report("crisis detector state", detectorBytes.count, entities, writeDetector, readDetector)
        report("window engine state", engineBytes.count, engine.openEntityCount, writeEngine, readEngine)
    }
}
