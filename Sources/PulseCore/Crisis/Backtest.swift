#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Scores alerts against labelled anomaly windows the way the Numenta Anomaly Benchmark does (Lavin &
/// Ahmad, "Evaluating Real-time Anomaly Detection Algorithms — the Numenta Anomaly Benchmark", 2015),
/// implemented from the published description, with event time in place of row indices:
///
/// - Only the **first** detection inside a window counts, rewarded `A_TP · σ(y)` where `y` is its position
///   relative to the window's end (−1 at the start, 0 at the end) and `σ(y) = 2 / (1 + e^{5y}) − 1`:
///   early detection earns close to `A_TP`, detection at the very end nothing. Later detections in the
///   same window are neither rewarded nor penalised.
/// - A detection outside every window is a false positive costing `A_FP · σ(y)` with `y` its distance after
///   the end of the preceding window in window lengths (a detection shortly after a window costs little;
///   σ is −1 beyond three window lengths), or the full `−A_FP` when no window precedes it.
/// - A window without detection costs `−A_FN`.
/// - The raw score is normalised to 100 for a perfect detector (one detection at the start of each
///   window) and 0 for the null detector (no detections): `100 · (S − S_null) / (S_perfect − S_null)`.
///
/// Profiles are NAB's: standard (A_TP 1, A_FP 0.11, A_FN 1), reward low FP (A_FP 0.22), reward low FN
/// (A_FN 2). A detection is a `firing` alert at its `detected_at`; escalations and re-sends are not new
/// detections. Windows may name an entity: a detection counts for it when it is about that entity (at
/// the window's level, if given) or, for a brand window, about one of the brand's subjects.
public enum Backtest {
    public struct Window: Sendable, Equatable {
        public var start: Int64
        public var end: Int64
        public var level: EntityLevel?
        public var entity: String?

        public init(start: Int64, end: Int64, level: EntityLevel? = nil, entity: String? = nil) {
            self.start = start
            self.end = end
            self.level = level
            self.entity = entity
        }

        func covers(_ detection: Detection) -> Bool {
            guard let entity = self.entity else { return true }
            if detection.entity == entity && (self.level == nil || self.level == detection.level) { return true }
            return self.level != .subject && detection.level == .subject && detection.brand == entity
        }
    }

    public struct Detection: Sendable, Equatable {
        public var at: Int64
        public var level: EntityLevel
        public var entity: String
        public var brand: String?
        public var alertname: String

        public init(at: Int64, level: EntityLevel, entity: String, brand: String?, alertname: String) {
            self.at = at
            self.level = level
            self.entity = entity
            self.brand = brand
            self.alertname = alertname
        }

        public init(_ event: CrisisDetector.AlertEvent) {
            self.init(
                at: event.detectedAt,
                level: event.level,
                entity: event.entity,
                brand: event.brand,
                alertname: event.alertname
            )
        }
    }

    public struct Profile: Sendable, Equatable {
        public var name: String
        public var truePositive: Double
        public var falsePositive: Double
        public var falseNegative: Double

        public static let standard = Profile(name: "standard", truePositive: 1, falsePositive: 0.11, falseNegative: 1)
        public static let rewardLowFP = Profile(
            name: "reward_low_FP_rate",
            truePositive: 1,
            falsePositive: 0.22,
            falseNegative: 1
        )
        public static let rewardLowFN = Profile(
            name: "reward_low_FN_rate",
            truePositive: 1,
            falsePositive: 0.11,
            falseNegative: 2
        )
        public static let all = [standard, rewardLowFP, rewardLowFN]
    }

    /// How each detection was counted.
    public enum Verdict: String, Sendable, Equatable {
        /// The first detection in a window.
        case truePositive = "true_positive"
        /// A later detection in an already detected window.
        case repeated
        case falsePositive = "false_positive"
    }

    public struct Report: Sendable {
        public struct Score: Sendable, Equatable {
            public var profile: String
            public var raw: Double
            public var normalized: Double
        }

        public var scores: [Score]
        public var windows: Int
        public var detectedWindows: Int
        public var detections: Int
        public var falsePositives: Int
        /// Detections inside a window (first or repeated) ÷ all detections; `nil` without detections.
        public var precision: Double?
        /// Detected windows ÷ windows; `nil` without windows.
        public var recall: Double?
        /// First detection − window start, averaged over detected windows (milliseconds).
        public var meanDelayMillis: Double?
        /// Per detection, in time order.
        public var verdicts: [(Detection, Verdict)]
        /// Per window, the delay of its first detection (`nil`: missed).
        public var delays: [(Window, Int64?)]
    }

    /// NAB's scaled sigmoid of a relative position.
    public static func sigma(_ y: Double) -> Double {
        y > 3 ? -1 : 2 / (1 + exp(5 * y)) - 1
    }

    /// Scores `detections` against `windows`. Detections and windows before `from` (a probationary
    /// period, as NAB's first 15 %) are left out.
    public static func score(
        detections: [Detection],
        windows: [Window],
        from: Int64 = Int64.min,
        profiles: [Profile] = Profile.all
    ) -> Report {
        let windows = windows.filter { $0.start >= from && $0.end > $0.start }.sorted { $0.start < $1.start }
        let detections = detections.filter { $0.at >= from }.sorted { ($0.at, $0.entity) < ($1.at, $1.entity) }
        var first: [Int64?] = Array(repeating: nil, count: windows.count)
        var raw = Array(repeating: 0.0, count: profiles.count)
        var verdicts: [(Detection, Verdict)] = []
        for detection in detections {
            let scoped = windows.indices.filter { windows[$0].covers(detection) }
            let inside = scoped.filter { windows[$0].start <= detection.at && detection.at <= windows[$0].end }
            if let index = inside.first(where: { first[$0] == nil }) {
                let window = windows[index]
                first[index] = detection.at
                let y = Double(detection.at - window.end) / Double(window.end - window.start)
                for (slot, profile) in profiles.enumerated() { raw[slot] += profile.truePositive * Self.sigma(y) }
                verdicts.append((detection, .truePositive))
            } else if !inside.isEmpty {
                verdicts.append((detection, .repeated))
            } else {
                let preceding = scoped.filter { windows[$0].end < detection.at }.max {
                    windows[$0].end < windows[$1].end
                }
                var weight = -1.0
                if let preceding {
                    let window = windows[preceding]
                    weight = Self.sigma(Double(detection.at - window.end) / Double(window.end - window.start))
                }
                for (slot, profile) in profiles.enumerated() { raw[slot] += profile.falsePositive * weight }
                verdicts.append((detection, .falsePositive))
            }
        }
        let missed = first.filter { $0 == nil }.count
        var scores: [Report.Score] = []
        for (slot, profile) in profiles.enumerated() {
            let score = raw[slot] - profile.falseNegative * Double(missed)
            let null = -profile.falseNegative * Double(windows.count)
            let perfect = profile.truePositive * Self.sigma(-1) * Double(windows.count)
            let normalized = windows.isEmpty ? (score >= 0 ? 100 : 0) : 100 * (score - null) / (perfect - null)
            scores.append(.init(profile: profile.name, raw: score, normalized: normalized))
        }
        let delays = zip(windows, first).map { window, at in (window, at.map { $0 - window.start }) }
        let found = delays.compactMap(\.1)
        let falsePositives = verdicts.filter { $0.1 == .falsePositive }.count
        return Report(
            scores: scores,
            windows: windows.count,
            detectedWindows: found.count,
            detections: detections.count,
            falsePositives: falsePositives,
            precision: detections.isEmpty ? nil : Double(detections.count - falsePositives) / Double(detections.count),
            recall: windows.isEmpty ? nil : Double(found.count) / Double(windows.count),
            meanDelayMillis: found.isEmpty ? nil : Double(found.reduce(0, +)) / Double(found.count),
            verdicts: verdicts,
            delays: delays
        )
    }
}
