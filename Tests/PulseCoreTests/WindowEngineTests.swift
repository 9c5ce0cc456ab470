import Foundation
import PulseCore
import Testing

/// Hand-computed expectations for small event sets. Times are offsets in seconds from 10:00:00.
@Suite("Windows and metrics: golden cases")
struct WindowEngineTests {
    static let t0: Int64 = 1_795_687_200_000  // 2026-11-26T10:00:00Z

    static func at(_ seconds: Double) -> Int64 { t0 + Int64(seconds * 1000) }

    static func make(
        _ id: String,
        _ kind: Event.Kind,
        at seconds: Double,
        subject: String = "p1",
        brand: String? = "acme",
        user: String = "u1",
        parent: String? = nil,
        followers: Int64? = nil,
        text: String? = nil,
        sentiment: Double? = nil,
        amount: Double? = nil,
        currency: String? = nil
    ) -> Event {
        Event(
            eventID: id,
            kind: kind,
            occurredAt: at(seconds),
            subjectID: subject,
            userID: user,
            brand: brand,
            text: kind == .comment ? (text ?? "ok") : nil,
            sentiment: sentiment,
            parentEventID: parent,
            amount: amount,
            currency: currency,
            user: followers.map { Event.User(followers: $0) }
        )
    }

    /// Runs events through an engine (then closes everything) and returns the metric records by key, as
    /// parsed JSON.
    static func run(_ events: [Event], configuration: WindowEngine.Configuration = .init()) -> (
        records: [String: [String: Any]], late: [WindowEngine.Output]
    ) {
        var engine = WindowEngine(configuration: configuration)
        var outputs: [WindowEngine.Output] = []
        for event in events { outputs += engine.add(event) }
        outputs += engine.closeAll()
        var records: [String: [String: Any]] = [:]
        var late: [WindowEngine.Output] = []
        for output in outputs {
            switch output {
            case .metrics(let record):
                records[record.recordKey] =
                    try! JSONSerialization.jsonObject(with: Data(record.render().utf8)) as? [String: Any]
            case .late: late.append(output)
            case .brandPartial: Issue.record("unexpected partial")
            }
        }
        return (records, late)
    }

    @Test("Engagement: counts, unique users, total, weighted, rate per view")
    func engagement() throws {
        let events = [
            Self.make("1", .like, at: 1, user: "a"), Self.make("2", .like, at: 2, user: "b"),
            Self.make("3", .comment, at: 3, user: "a", sentiment: 0.5), Self.make("4", .share, at: 4, user: "c"),
            Self.make("5", .purchase, at: 5, user: "d", amount: 10, currency: "EUR"),
            Self.make("6", .view, at: 6, user: "e"), Self.make("7", .view, at: 7, user: "a"),
            Self.make("8", .view, at: 8, user: "f"), Self.make("9", .view, at: 9, user: "g"),
        ]
        let record = try #require(Self.run(events).records["subject|p1|2026-11-26T10:00:00Z"])
        #expect(record["counts"] as? [String: Int] == ["like": 2, "comment": 1, "share": 1, "purchase": 1, "view": 4])
        #expect(record["unique_users"] as? Int == 7)
        let engagement = try #require(record["engagement"] as? [String: Any])
        #expect(engagement["total"] as? Int == 5)  // L + C + S + P
        #expect(engagement["weighted"] as? Int == 2 * 1 + 1 * 2 + 1 * 3 + 1 * 5)  // 12
        #expect(engagement["rate"] as? Double == 1.25)  // 5 / 4 views
        let revenue = try #require(record["revenue"] as? [String: Any])
        #expect(revenue["purchases"] as? Int == 1 && revenue["purchasers"] as? Int == 1)
        #expect(revenue["amount"] as? [String: Int] == ["EUR": 10])
        #expect(abs((revenue["conversion"] as? Double ?? 0) - 0.142857) < 1e-9)  // 1 purchaser ÷ 7 users
        #expect(record["is_final"] as? Bool == true && record["revision"] as? Int == 0)
        #expect(record["schema"] as? String == "crowdpulse.metrics/v1")
    }

    @Test("Virality: cascades three levels deep, breadth, reshare ratio, reach and top amplifiers")
    func cascades() throws {
        // s1 (root) ← s2 ← s3 ← s4, and s5 ← s1; s6 root without parent; s7's parent is unknown.
        let events = [
            Self.make("s1", .share, at: 1, user: "a", followers: 100),
            Self.make("s2", .share, at: 2, user: "b", parent: "s1", followers: 5000),
            Self.make("s3", .share, at: 3, user: "c", parent: "s2", followers: 20),
            Self.make("s4", .share, at: 4, user: "d", parent: "s3"),
            Self.make("s5", .share, at: 5, user: "e", parent: "s1", followers: 700),
            Self.make("s6", .share, at: 6, user: "a", followers: 150),  // a again: last value 150 counts
            Self.make("s7", .share, at: 7, user: "f", parent: "unknown", followers: 1),
            Self.make("l1", .like, at: 8, user: "g"), Self.make("l2", .like, at: 9, user: "h"),
            Self.make("c1", .comment, at: 10, user: "i", sentiment: 0),
        ]
        let record = try #require(Self.run(events).records["subject|p1|2026-11-26T10:00:00Z"])
        let virality = try #require(record["virality"] as? [String: Any])
        // Depths: s1 1, s2 2, s3 3, s4 4, s5 2, s6 1, s7 1 (unknown parent).
        #expect(virality["max_depth"] as? Int == 4)
        #expect(virality["max_breadth"] as? Int == 3)  // depth 1: s1, s6, s7
        #expect(virality["reshare_ratio"] as? Double == 2.5)  // with a parent: s2 s3 s4 s5 s7 (5) ÷ without: s1 s6
        #expect(virality["shares_per_min"] as? Int == 7)
        #expect(virality["amplification"] as? Double == 0.7)  // 7 / (2 + 1 + 7)
        #expect(virality["potential_reach"] as? Int == 150 + 5000 + 20 + 700 + 1)
        let top = try #require(virality["top_amplifiers"] as? [[String: Any]])
        #expect(top.map { $0["user_id"] as? String } == ["b", "e", "a", "c", "f"])
        #expect(virality["growth"] is NSNull)  // no previous window
        #expect(virality["share_acceleration"] as? Int == 7)
    }

    @Test("Previous window: acceleration and growth; an entity absent last window has null growth")
    func previousWindow() throws {
        let events = [
            Self.make("a", .share, at: 10), Self.make("b", .share, at: 20),  // window 10:00: 2 shares
            Self.make("c", .share, at: 70), Self.make("d", .share, at: 80), Self.make("e", .share, at: 90),
            Self.make("f", .share, at: 100),  // window 10:01: 4 shares
            Self.make("g", .like, at: 190),  // window 10:03 (10:02 has no record): growth null, acceleration 0
        ]
        let records = Self.run(events).records
        let second = try #require(records["subject|p1|2026-11-26T10:01:00Z"]?["virality"] as? [String: Any])
        #expect(second["growth"] as? Int == 2)
        #expect(second["share_acceleration"] as? Int == 2)
        let fourth = try #require(records["subject|p1|2026-11-26T10:03:00Z"]?["virality"] as? [String: Any])
        #expect(fourth["growth"] is NSNull)
        #expect(fourth["share_acceleration"] as? Int == 0)
    }

    @Test("Sentiment aggregates with ±0.05 thresholds, inclusive")
    func sentiment() throws {
        let scores = [0.05, -0.05, 0.04, -0.8, 0.9]
        let events = scores.enumerated().map {
            Self.make("c\($0.offset)", .comment, at: Double($0.offset), sentiment: $0.element)
        }
        let record = try #require(Self.run(events).records["subject|p1|2026-11-26T10:00:00Z"])
        let sentiment = try #require(record["sentiment"] as? [String: Any])
        #expect(sentiment["scored"] as? Int == 5)
        #expect(
            sentiment["positive"] as? Int == 2 && sentiment["negative"] as? Int == 2
                && sentiment["neutral"] as? Int == 1
        )
        #expect(sentiment["negative_share"] as? Double == 0.4)
        #expect(sentiment["net"] as? Int == 0)
        #expect(abs((sentiment["mean"] as? Double ?? 9) - 0.028) < 1e-9)
    }

    @Test("Out of order within grace counts; beyond grace goes to the late topic")
    func lateness() throws {
        let events = [
            Self.make("1", .like, at: 50),
            Self.make("2", .like, at: 85),  // watermark 55: window [10:00, 10:01) still open
            Self.make("3", .like, at: 40),  // out of order but within grace: counted
            Self.make("4", .like, at: 95),  // watermark 65: window 10:00 closes
            Self.make("5", .like, at: 30),  // late by 5 s
        ]
        let (records, late) = Self.run(events)
        #expect(
            records["subject|p1|2026-11-26T10:00:00Z"]?["counts"] as? [String: Int] == [
                "like": 2, "comment": 0, "share": 0, "purchase": 0, "view": 0,
            ]
        )
        #expect(late == [.late(windowStart: Self.t0, windowEnd: Self.at(60), latenessMillis: 5000)])
    }

    @Test("Idle close: a silent partition's windows close after idle_close of wall time")
    func idleClose() {
        var engine = WindowEngine()
        _ = engine.add(Self.make("1", .like, at: 10), nowWall: 1_000_000)
        #expect(engine.idle(nowWall: 1_059_999).isEmpty)
        let closed = engine.idle(nowWall: 1_060_000)
        #expect(closed.count == 2)  // subject and brand
        #expect(engine.openWindowCount == 0)
        // The window is closed: a later event for it is late, never folded into a final record.
        let late = engine.add(Self.make("2", .like, at: 20), nowWall: 1_060_001)
        #expect(late.contains { if case .late = $0 { return true } else { return false } })
    }

    @Test("Hopping windows: each event counts in size/step windows")
    func hopping() {
        let configuration = WindowEngine.Configuration(window: .hopping(size: 300_000, step: 60_000))
        let (records, _) = Self.run([Self.make("1", .like, at: 130, brand: nil)], configuration: configuration)
        // 10:02:10 lies in the 5-minute windows starting 09:58, 09:59, 10:00, 10:01 and 10:02.
        let starts = ["09:58", "09:59", "10:00", "10:01", "10:02"]
        #expect(Set(records.keys) == Set(starts.map { "subject|p1|2026-11-26T\($0):00Z" }))
    }

    @Test("Updates mode: revisions as stream time advances, then the final")
    func updatesMode() {
        var engine = WindowEngine(configuration: .init(emit: .updates(intervalMillis: 10_000)))
        var outputs: [WindowEngine.Output] = []
        for (index, second) in [1.0, 5, 12, 25, 61, 95].enumerated() {
            outputs += engine.add(Self.make("e\(index)", .like, at: second, brand: nil))
        }
        let revisions = outputs.compactMap { output -> (Int, Bool)? in
            if case .metrics(let record) = output, record.windowStart == Self.t0 {
                return (record.revision, record.isFinal)
            }
            return nil
        }
        // Crossing 10 s, 20 s and 60 s of stream time emits revisions 0, 1, 2; the close at 95 s the final.
        #expect(revisions.map(\.0) == [0, 1, 2, 3])
        #expect(revisions.map(\.1) == [false, false, false, true])
    }

    @Test("Brand records combine the brand's subjects")
    func brandLevel() throws {
        let events = [
            Self.make("1", .like, at: 1, subject: "p1", user: "a"),
            Self.make("2", .like, at: 2, subject: "p2", user: "a"),
            Self.make("3", .share, at: 3, subject: "p2", user: "b"),
            Self.make("4", .like, at: 4, subject: "p3", brand: "other"),
        ]
        let records = Self.run(events).records
        let brand = try #require(records["brand|acme|2026-11-26T10:00:00Z"])
        #expect(brand["counts"] as? [String: Int] == ["like": 2, "comment": 0, "share": 1, "purchase": 0, "view": 0])
        #expect(brand["unique_users"] as? Int == 2)
        #expect(records.count == 5)  // 3 subjects, 2 brands
    }
}

@Suite("Unique users")
struct UniqueCounterTests {
    @Test("Exact up to the bound, then HyperLogLog within 3% (1.6% standard error)", arguments: [5_000, 100_000])
    func switchOver(_ distinct: Int) {
        var counter = UniqueCounter(exactLimit: 1000)
        for index in 0..<distinct {
            counter.insert(stableHash("user-\(index)"))
            if index == 999 { #expect(counter.count == 1000 && !counter.isApproximate) }
        }
        #expect(counter.isApproximate)
        let error = abs(Double(counter.count - distinct)) / Double(distinct)
        #expect(error < 0.03, "estimate \(counter.count) for \(distinct)")
    }

    @Test("Merging sketches equals sketching the union")
    func merge() {
        var left = UniqueCounter(exactLimit: 100)
        var right = UniqueCounter(exactLimit: 100)
        var union = UniqueCounter(exactLimit: 100)
        for index in 0..<3000 {
            let hash = stableHash("u\(index)")
            if index % 2 == 0 { left.insert(hash) } else { right.insert(hash) }
            if index < 1500 { right.insert(hash) }
            union.insert(hash)
        }
        left.merge(right)
        #expect(left.count == union.count)
        var small = UniqueCounter()
        small.insert(1)
        small.merge(UniqueCounter())
        #expect(small.count == 1 && !small.isApproximate)
    }

    @Test("Exact counts and merges agree with a set, whatever the order and the repeats")
    func exactAgreesWithASet() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<50 {
            // Few distinct values (many repeats) in some rounds, many in others; some straddle the bound.
            let range = UInt64(round % 2 == 0 ? 40 : 5000)
            var left = UniqueCounter(exactLimit: 300)
            var right = UniqueCounter(exactLimit: 300)
            var leftSet = Set<UInt64>()
            var rightSet = Set<UInt64>()
            for _ in 0..<Int.random(in: 0..<200, using: &generator) {
                let value = UInt64.random(in: 0..<range, using: &generator)
                left.insert(value)
                leftSet.insert(value)
            }
            for _ in 0..<Int.random(in: 0..<200, using: &generator) {
                let value = UInt64.random(in: 0..<range, using: &generator)
                right.insert(value)
                rightSet.insert(value)
            }
            #expect(left.count == leftSet.count && right.count == rightSet.count)
            var writer = BinaryWriter()
            left.write(to: &writer)
            var reader = BinaryReader(writer.bytes)
            #expect(try UniqueCounter(reading: &reader) == left)
            left.merge(right)
            let union = leftSet.union(rightSet)
            #expect(left.isApproximate == (union.count > 300))
            if !left.isApproximate { #expect(left.count == union.count) }
            // The order values came in does not show: equal sets give equal counters.
            var reordered = UniqueCounter(exactLimit: 300)
            for value in union.shuffled(using: &generator) { reordered.insert(value) }
            if !left.isApproximate { #expect(reordered == left) }
        }
    }

    @Test("JSON keeps the shape of earlier versions: an array of values, no `exact` key once a sketch")
    func jsonShape() throws {
        // As a set-based counter wrote it: any order (here with a repeat, which a set would not have).
        let old = #"{"exactLimit":1000,"exact":[5,3,9,3],"registers":[]}"#
        let decoded = try JSONDecoder().decode(UniqueCounter.self, from: Data(old.utf8))
        var expected = UniqueCounter(exactLimit: 1000)
        for value: UInt64 in [9, 3, 5] { expected.insert(value) }
        #expect(decoded == expected && decoded.count == 3)
        let encoded = String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self)
        #expect(encoded.contains(#""exact":[3,5,9]"#))

        var sketch = UniqueCounter(exactLimit: 2)
        for value: UInt64 in [1, 2, 3] { sketch.insert(stableHash("u\(value)")) }
        let sketchJSON = try JSONEncoder().encode(sketch)
        let object = try #require(try JSONSerialization.jsonObject(with: sketchJSON) as? [String: Any])
        #expect(object["exact"] == nil && (object["registers"] as? [Int])?.count == 4096)
        #expect(try JSONDecoder().decode(UniqueCounter.self, from: sketchJSON) == sketch)
        let short = #"{"exactLimit":2,"registers":[1,2]}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(UniqueCounter.self, from: Data(short.utf8)) }
    }
}

@Suite("Windows: bounded memory")
struct WindowMemoryTests {
    @Test("Cascades of idle subjects and old previous-window figures are forgotten")
    func forgetsIdleState() {
        var engine = WindowEngine(configuration: .init(cascadeTTLMillis: 600_000))
        let t0: Int64 = 1_795_687_200_000
        // 5 000 subjects share once in the first minute, then only one subject stays active for an hour.
        for index in 0..<5000 {
            _ = engine.add(WindowEngineTests.make("s\(index)", .share, at: Double(index) / 100, subject: "p\(index)"))
        }
        #expect(engine.cascadeSubjects == 5000)
        for minute in 1...60 {
            _ = engine.add(WindowEngineTests.make("k\(minute)", .share, at: Double(minute * 60), subject: "busy"))
        }
        #expect(engine.cascadeSubjects <= 2)
        #expect(engine.openWindowCount <= 4)
        _ = t0
    }

    @Test("Cascade memory is capped per partition: past the cap, the subjects whose last share is oldest go first")
    func cascadeCap() {
        var engine = WindowEngine(
            configuration: .init(window: .tumbling(10_000), graceMillis: 0, cascadeMaxShares: 10)
        )
        // Ten subjects, three shares each, s0 the oldest: 30 shares remembered, over the cap of 10.
        for subject in 0..<10 {
            for share in 0..<3 {
                let seconds = Double(subject) * 0.5 + Double(share) * 0.1
                _ = engine.add(
                    WindowEngineTests.make("s\(subject)-\(share)", .share, at: seconds, subject: "s\(subject)")
                )
            }
        }
        #expect(engine.cascadeShares == 30)
        // The first window closes (grace 0): the sweep forgets s0 … s6, keeping s7, s8, s9 (9 shares).
        _ = engine.add(WindowEngineTests.make("close", .like, at: 10.5, subject: "other"))
        #expect(engine.cascadeShares == 9)
        #expect(engine.cascadesForgotten == 7)
        #expect(engine.cascadeSubjects == 3)
        // A re-share of a kept subject's share still gets its depth; one of a forgotten subject's gets 1.
        let outputs =
            engine.add(WindowEngineTests.make("r9", .share, at: 11, subject: "s9", parent: "s9-2"))
            + engine.add(WindowEngineTests.make("r0", .share, at: 11.1, subject: "s0", parent: "s0-2"))
            + engine.closeAll()
        var depths: [String: [Int: Int]] = [:]
        for case .metrics(let record) in outputs
        where record.key.level == .subject && record.windowStart == WindowEngineTests.at(10) {
            depths[record.key.entity] = record.aggregate.sharesByDepth
        }
        #expect(depths["s9"] == [2: 1])
        #expect(depths["s0"] == [1: 1])
    }

    @Test("A checkpoint of the version that kept cascade share ids as strings still restores the cascades")
    func cascadeStateVersionOne() throws {
        // Version 1 of the engine's state, by hand: no open window, subject p1's cascade a → b (depth 2).
        var old = BinaryWriter()
        old.byte(1)  // version
        old.byte(1)
        old.int(WindowEngineTests.at(1))  // newest event time
        old.int(WindowEngineTests.at(0))  // watermark
        old.int(0)  // late events
        for _ in 0..<3 { old.byte(0) }  // no update, sweep or activity time
        old.varint(0)  // open windows
        old.varint(0)  // previous shares
        old.varint(1)
        old.string("p1")
        old.varint(4096)  // capacity
        old.varint(0)  // head
        old.varint(2)
        old.string("a")
        old.int(1)
        old.string("b")
        old.int(2)
        old.varint(1)
        old.string("p1")
        old.int(WindowEngineTests.at(1))
        var reader = BinaryReader(old.bytes)
        let configuration = WindowEngine.Configuration(window: .tumbling(10_000), graceMillis: 0)
        let restored = try WindowEngine(
            reading: &reader,
            configuration: configuration,
            scorer: MultilingualSentimentScorer()
        )
        #expect(reader.isAtEnd)
        #expect(restored.cascadeShares == 2)
        // Written again (version 2, hashes) and read back, it is the same.
        var current = BinaryWriter()
        restored.write(to: &current)
        var again = BinaryReader(current.bytes)
        let reread = try WindowEngine(
            reading: &again,
            configuration: configuration,
            scorer: MultilingualSentimentScorer()
        )
        for var engine in [restored, reread] {
            // A re-share of b is at depth 3; a share of an unknown parent at 1.
            let outputs =
                engine.add(WindowEngineTests.make("c", .share, at: 2, parent: "b"))
                + engine.add(WindowEngineTests.make("d", .share, at: 3, parent: "zz"))
                + engine.closeAll()
            let depths = outputs.compactMap { output -> [Int: Int]? in
                guard case .metrics(let record) = output, record.key.level == .subject else { return nil }
                return record.aggregate.sharesByDepth
            }
            #expect(depths == [[3: 1, 1: 1]])
        }
    }
}

@Suite("Entity keys")
struct EntityKeyOrderTests {
    @Test("Levels order as their names do, for every pair")
    func levelOrderFollowsNames() {
        for left in EntityLevel.allCases {
            for right in EntityLevel.allCases {
                #expect((left < right) == (left.rawValue < right.rawValue), "\(left) < \(right)")
            }
        }
    }
}
