import Foundation
import PulseCore
import Testing

func parseJSONObject(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

/// Generated streams with a daily rhythm, run through `Replay` (the same engine and detectors as the
/// daemon), checked for which alerts fire, when, and with which assessment.
@Suite("Crisis detection scenarios")
struct CrisisScenarioTests {
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000
    /// 2026-11-02T00:00:00Z, a Monday.
    static let start: Int64 = 1_793_577_600_000

    /// Builds an event stream.
    struct Stream {
        var random = SplitMix64(seed: 11)
        var events: [(at: Int64, json: String)] = []
        var sequence = 0

        static let negativeFragments = [
            "the update broke everything", "support never answered my ticket", "my order arrived damaged",
            "I was charged twice", "the app crashes every time I open it", "still waiting for my refund",
            "the battery died after two days", "customer service was rude to me", "delivery is three weeks late",
            "the new formula gave me a rash", "worst experience with this company", "they cancelled without notice",
        ]
        static let positiveFragments = [
            "love the new colours", "arrived early and works great", "best purchase this year",
            "the staff were so helpful", "really happy with the quality", "great value for money",
        ]
        static let neutralFragments = [
            "when is the next drop", "does it come in blue", "is shipping free to Canada", "what size should I get",
        ]

        mutating func pick(_ list: [String]) -> String { list[Int(self.random.next() % UInt64(list.count))] }

        mutating func comment(
            at: Int64,
            subject: String,
            brand: String,
            user: String,
            sentiment: Double,
            text: String,
            createdAt: Int64? = nil
        ) {
            self.sequence += 1
            var userObject = ""
            if let createdAt { userObject = #","user":{"created_at":"\#(RFC3339.format(millis: createdAt))"}"# }
            let escaped = text.replacingOccurrences(of: "\"", with: "'")
            self.events.append(
                (
                    at,
                    #"{"event_id":"e\#(self.sequence)","type":"comment","occurred_at":\#(at),"subject_id":"\#(subject)","user_id":"\#(user)","brand":"\#(brand)","text":"\#(escaped)","sentiment":\#(sentiment)\#(userObject)}"#
                )
            )
        }

        mutating func purchase(at: Int64, subject: String, brand: String, user: String) {
            self.sequence += 1
            self.events.append(
                (
                    at,
                    #"{"event_id":"e\#(self.sequence)","type":"purchase","occurred_at":\#(at),"subject_id":"\#(subject)","user_id":"\#(user)","brand":"\#(brand)","amount":20,"currency":"EUR"}"#
                )
            )
        }

        /// Ordinary traffic on `brand` from the start of the fourth day (after ``ordinaryDays()``) until `end`.
        mutating func fourthDay(brand: String, subjects: Int, until end: Int64, perMinute: Double) {
            let from = CrisisScenarioTests.start + 3 * CrisisScenarioTests.day
            self.background(brand: brand, subjects: subjects, from: from, to: end, perMinute: perMinute)
        }

        /// A wave of angry comments by long-standing accounts on one post: `count` comments `spacing` ms
        /// apart from `from`, by `authors` distinct users, with text from `text` (default: a complaint).
        mutating func wave(
            on subject: String,
            brand: String,
            from: Int64,
            count: Int,
            spacing: Int64,
            authors: Int = 400,
            text: ((inout Stream) -> String)? = nil
        ) {
            for index in 0..<count {
                let words = text?(&self) ?? self.pick(Self.negativeFragments)
                self.comment(
                    at: from + Int64(index) * spacing,
                    subject: subject,
                    brand: brand,
                    user: "\(brand)-fan-\(index % authors)",
                    sentiment: -0.7,
                    text: words,
                    createdAt: CrisisScenarioTests.start - 400 * CrisisScenarioTests.day
                )
            }
        }

        /// Ordinary traffic on `brand`: `perMinute` comments on average, following a daily rhythm
        /// (`diurnal` = relative amplitude, peak at 20:00), `negativeShare` of them negative, over
        /// `[from, to)`; the rate is multiplied by `growth(t)`. Some purchases too.
        mutating func background(
            brand: String,
            subjects: Int,
            from: Int64,
            to: Int64,
            perMinute: Double,
            negativeShare: Double = 0.15,
            diurnal: Double = 0.6,
            growth: (Int64) -> Double = { _ in 1 }
        ) {
            var time = from
            while time < to {
                let hourOfDay = Double((time % CrisisScenarioTests.day) / CrisisScenarioTests.hour)
                let rhythm = 1 + diurnal * cos(2 * Double.pi * (hourOfDay - 20) / 24)
                let rate = perMinute * rhythm * growth(time)
                var count = Int(rate)
                if Double(self.random.next() % 1000) / 1000 < rate - Double(count) { count += 1 }
                for _ in 0..<count {
                    let at = time + Int64(self.random.next() % 60_000)
                    let subject = "\(brand)-post-\(self.random.next() % UInt64(subjects))"
                    let user = "\(brand)-fan-\(self.random.next() % 3000)"
                    let roll = Double(self.random.next() % 1000) / 1000
                    if roll < negativeShare {
                        let text = self.pick(Self.negativeFragments) + " " + self.pick(Self.negativeFragments)
                        self.comment(at: at, subject: subject, brand: brand, user: user, sentiment: -0.6, text: text)
                    } else if roll < negativeShare + 0.45 {
                        self.comment(
                            at: at,
                            subject: subject,
                            brand: brand,
                            user: user,
                            sentiment: 0.6,
                            text: self.pick(Self.positiveFragments)
                        )
                    } else {
                        self.comment(
                            at: at,
                            subject: subject,
                            brand: brand,
                            user: user,
                            sentiment: 0,
                            text: self.pick(Self.neutralFragments)
                        )
                    }
                    if self.random.next() % 4 == 0 { self.purchase(at: at, subject: subject, brand: brand, user: user) }
                }
                time += CrisisScenarioTests.minute
            }
        }

        /// The alert records of a replay of the stream, as parsed objects.
        func alerts() -> [[String: Any]] {
            var replay = Replay(sourceName: "scenario")
            var lines: [OutputLine] = []
            for event in self.events.sorted(by: { $0.at < $1.at }) {
                var bytes = Array(event.json.utf8)
                lines += bytes.withUnsafeMutableBytes { replay.feed(UnsafeRawBufferPointer($0), offset: 0) }
            }
            lines += replay.finish()
            return lines.filter { $0.topic == "alerts" }.compactMap { line -> [String: Any]? in
                guard case .json(let text) = line.value else { return nil }
                return parseJSONObject(text)
            }
        }
    }

    static func label(_ alert: [String: Any], _ name: String) -> String? {
        (alert["labels"] as? [String: Any])?[name] as? String
    }

    static func annotation(_ alert: [String: Any], _ name: String) -> String? {
        (alert["annotations"] as? [String: Any])?[name] as? String
    }

    /// Three ordinary days on three brands.
    static func ordinaryDays(days: Int = 3) -> Stream {
        var stream = Stream()
        let end = Self.start + Int64(days) * Self.day
        stream.background(brand: "acme", subjects: 20, from: Self.start, to: end, perMinute: 6)
        stream.background(brand: "globex", subjects: 20, from: Self.start, to: end, perMinute: 4)
        stream.background(brand: "initech", subjects: 10, from: Self.start, to: end, perMinute: 2)
        return stream
    }

    @Test("days of ordinary traffic with a daily rhythm fire nothing at any level")
    func ordinaryTrafficIsQuiet() {
        let alerts = Self.ordinaryDays(days: 4).alerts()
        #expect(alerts.isEmpty, "\(alerts.map { Self.label($0, "entity") ?? "?" })")
    }

    @Test("an organic crisis fires within 3 minutes of its first comment, assessed organic, at both levels")
    func organicCrisis() throws {
        var stream = Self.ordinaryDays()
        let waveStart = Self.start + 3 * Self.day + 14 * Self.hour + 20_000
        let end = waveStart + 40 * Self.minute
        stream.fourthDay(brand: "acme", subjects: 20, until: end, perMinute: 6)
        stream.wave(on: "acme-post-3", brand: "acme", from: waveStart, count: 500, spacing: 20 * Self.minute / 500) {
            $0.pick(Stream.negativeFragments) + ", " + $0.pick(Stream.negativeFragments) + " #acmefail"
        }
        let alerts = stream.alerts()
        let firing = alerts.filter { $0["status"] as? String == "firing" && Self.annotation($0, "change") == "firing" }
        let subject = try #require(firing.first { Self.label($0, "entity") == "acme-post-3" })
        #expect(Self.label(subject, "alertname") == "NegativeSentimentSpike")
        #expect(Self.annotation(subject, "assessment") == "organic")
        let detected = try #require(RFC3339.parseMillis(subject["detected_at"] as? String ?? ""))
        #expect(detected - waveStart <= 3 * Self.minute, "detected \(detected - waveStart) ms after the wave began")
        #expect(firing.contains { Self.label($0, "level") == "brand" && Self.label($0, "entity") == "acme" })
        #expect(!firing.contains { Self.label($0, "alertname") == "CoordinatedNegativeCampaign" })
        #expect(
            !firing.contains { ["globex", "initech"].contains(Self.label($0, "brand") ?? Self.label($0, "entity")) }
        )
        // The wave ends: the alert resolves.
        #expect(
            alerts.contains {
                $0["status"] as? String == "resolved" && Self.label($0, "entity") == "acme-post-3"
            }
        )
        #expect(Self.annotation(subject, "sample_event_ids")?.isEmpty == false)
        #expect(Self.annotation(subject, "summary")?.contains("acme-post-3") == true)
    }

    @Test("a coordinated attack by new accounts with near-duplicate text is reported as suspected_coordinated")
    func coordinatedAttack() throws {
        var stream = Self.ordinaryDays()
        let attackStart = Self.start + 3 * Self.day + 10 * Self.hour
        stream.fourthDay(brand: "globex", subjects: 20, until: attackStart + Self.hour, perMinute: 4)
        let template = "Globex scammed me, they stole my money, avoid Globex at all costs!!! #boycottglobex"
        for minute in 0..<15 {
            // Bursts: 30 comments within ten seconds, each minute.
            for index in 0..<30 {
                let at = attackStart + Int64(minute) * Self.minute + Int64(index) * 300
                var text = template
                if index % 3 == 0 { text += " pls share" }
                if index % 5 == 0 { text = text.replacingOccurrences(of: "avoid", with: "AVOID") }
                stream.comment(
                    at: at,
                    subject: "globex-post-1",
                    brand: "globex",
                    user: "bot-\(minute * 30 + index)",
                    sentiment: -0.8,
                    text: text,
                    createdAt: attackStart - 2 * Self.day
                )
            }
        }
        let alerts = stream.alerts().filter { Self.annotation($0, "change") == "firing" }
        let campaign = try #require(
            alerts.first {
                Self.label($0, "alertname") == "CoordinatedNegativeCampaign" && Self.label($0, "level") == "subject"
            }
        )
        #expect(Self.annotation(campaign, "assessment") == "suspected_coordinated")
        #expect(Self.label(campaign, "severity") == "warning")
        #expect(Double(Self.annotation(campaign, "new_account_share") ?? "") ?? 0 > 0.5)
        #expect(
            !alerts.contains {
                Self.label($0, "alertname") == "NegativeSentimentSpike" && Self.label($0, "entity") == "globex-post-1"
            }
        )
    }

    @Test("a backlash from verified buyers is organic with a high verified-customer share")
    func verifiedBuyerBacklash() throws {
        var stream = Self.ordinaryDays()
        let waveStart = Self.start + 3 * Self.day + 9 * Self.hour
        stream.fourthDay(brand: "initech", subjects: 10, until: waveStart + Self.hour, perMinute: 2)
        // 300 buyers bought on day 2; on day 3 they complain.
        for index in 0..<300 {
            stream.purchase(
                at: Self.start + 2 * Self.day + Int64(index) * 60_000,
                subject: "initech-post-2",
                brand: "initech",
                user: "buyer-\(index)"
            )
        }
        for index in 0..<300 {
            stream.comment(
                at: waveStart + Int64(index) * 2_000,
                subject: "initech-post-2",
                brand: "initech",
                user: "buyer-\(index)",
                sentiment: -0.7,
                text: stream.pick(Stream.negativeFragments) + " and " + stream.pick(Stream.negativeFragments),
                createdAt: Self.start - 200 * Self.day
            )
        }
        let alerts = stream.alerts().filter { Self.annotation($0, "change") == "firing" }
        let brand = try #require(
            alerts.first { Self.label($0, "level") == "brand" && Self.label($0, "entity") == "initech" }
        )
        #expect(Self.annotation(brand, "assessment") == "organic")
        #expect(Double(Self.annotation(brand, "verified_customer_share") ?? "") ?? 0 > 0.5)
    }

    @Test("gradual growth, a strong daily peak, a small flurry and a new brand's launch page nobody")
    func quietScenarios() {
        var stream = Self.ordinaryDays()
        let end = Self.start + 3 * Self.day
        // Comment volume triples over three days, same share of negative ones.
        stream.background(brand: "growco", subjects: 10, from: Self.start, to: end, perMinute: 3) {
            1 + 2 * Double($0 - CrisisScenarioTests.start) / Double(3 * CrisisScenarioTests.day)
        }
        // A strong evening peak.
        stream.background(brand: "peakco", subjects: 10, from: Self.start, to: end, perMinute: 5, diurnal: 0.95)
        // A handful of angry comments on a quiet post.
        for index in 0..<8 {
            stream.comment(
                at: end - 5 * Self.hour + Int64(index) * 10_000,
                subject: "initech-post-9",
                brand: "initech",
                user: "grump-\(index)",
                sentiment: -0.9,
                text: "this is terrible, never again"
            )
        }
        // A new brand launches with plenty of ordinary comments.
        stream.background(brand: "newco", subjects: 5, from: end - 6 * Self.hour, to: end, perMinute: 40, diurnal: 0)
        let alerts = stream.alerts()
        #expect(
            alerts.isEmpty,
            "\(alerts.map { "\(Self.label($0, "alertname") ?? "") \(Self.label($0, "entity") ?? "")" })"
        )
    }

    @Test("a wave that comes and goes for an hour fires once and resolves once per level: no alert storm")
    func flappingWave() {
        var stream = Self.ordinaryDays()
        let waveStart = Self.start + 3 * Self.day + 15 * Self.hour
        stream.fourthDay(brand: "acme", subjects: 20, until: waveStart + 2 * Self.hour, perMinute: 6)
        // Bursts of angry comments: 4 minutes on, 4 minutes off, for an hour.
        for cycle in 0..<8 {
            let burst = waveStart + Int64(cycle) * 8 * Self.minute
            stream.wave(on: "acme-post-5", brand: "acme", from: burst, count: 100, spacing: 2_400, authors: 300)
        }
        let alerts = stream.alerts()
        let changes = alerts.compactMap { alert -> String? in
            guard Self.label(alert, "alertname") == CrisisDetector.spikeName else { return nil }
            return "\(Self.label(alert, "level") ?? "") \(Self.annotation(alert, "change") ?? "")"
        }
        #expect(changes.filter { $0 == "subject firing" }.count == 1, "\(changes)")
        #expect(changes.filter { $0 == "subject resolved" }.count == 1, "\(changes)")
        #expect(changes.filter { $0 == "brand firing" }.count == 1, "\(changes)")
        #expect(changes.filter { $0 == "brand resolved" }.count == 1, "\(changes)")
    }
}

@Suite("Backtest on a generated stream")
struct CrisisBacktestTests {
    @Test("An organic crisis and a quiet brand: the crisis window is detected early, nothing else fires")
    func backtest() throws {
        typealias Scenario = CrisisScenarioTests
        var stream = Scenario.ordinaryDays()
        let waveStart = Scenario.start + 3 * Scenario.day + 14 * Scenario.hour
        stream.fourthDay(brand: "acme", subjects: 20, until: waveStart + Scenario.hour, perMinute: 6)
        stream.wave(on: "acme-post-3", brand: "acme", from: waveStart, count: 500, spacing: 2_400)
        var replay = Replay(sourceName: "scenario")
        for event in stream.events.sorted(by: { $0.at < $1.at }) {
            var bytes = Array(event.json.utf8)
            _ = bytes.withUnsafeMutableBytes { replay.feed(UnsafeRawBufferPointer($0), offset: 0) }
        }
        _ = replay.finish()
        let labels = [
            Backtest.Window(start: waveStart, end: waveStart + 20 * Scenario.minute, level: .brand, entity: "acme")
        ]
        let report = Backtest.score(detections: replay.detections, windows: labels)
        #expect(report.recall == 1)
        #expect(report.precision == 1, "\(report.verdicts)")
        let delay = try #require(report.meanDelayMillis)
        #expect(delay <= 3 * Double(Scenario.minute))
        // Detected within the first sixth of the window: a standard NAB score above 80.
        #expect(report.scores[0].normalized > 80, "\(report.scores)")
    }
}
