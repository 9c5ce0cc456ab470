import Foundation
import PulseCore
import Testing

@Suite("Backtest: NAB scoring of alerts against labelled windows")
struct BacktestTests {
    let window = Backtest.Window(start: 0, end: 1_000, level: .brand, entity: "acme")

    func detection(_ at: Int64, _ entity: String = "acme", level: EntityLevel = .brand, brand: String? = "acme")
        -> Backtest.Detection
    {
        Backtest.Detection(at: at, level: level, entity: entity, brand: brand, alertname: "NegativeSentimentSpike")
    }

    func standard(_ report: Backtest.Report) -> Backtest.Report.Score { report.scores[0] }

    @Test("NAB's scaled sigmoid: about 0.9866 at a window's start, 0 at its end, −1 beyond three lengths")
    func sigmoid() {
        #expect(abs(Backtest.sigma(-1) - 0.98661) < 1e-5)
        #expect(Backtest.sigma(0) == 0)
        #expect(abs(Backtest.sigma(0.5) - (2 / (1 + exp(2.5)) - 1)) < 1e-12)
        #expect(Backtest.sigma(3.01) == -1)
    }

    @Test("A detection at the window's start scores 100, the null detector 0, one at the end about 50")
    func normalisation() {
        let perfect = Backtest.score(detections: [self.detection(0)], windows: [self.window])
        #expect(perfect.scores.allSatisfy { abs($0.normalized - 100) < 1e-9 })
        #expect(perfect.precision == 1 && perfect.recall == 1 && perfect.meanDelayMillis == 0)
        let null = Backtest.score(detections: [], windows: [self.window])
        #expect(null.scores.allSatisfy { abs($0.normalized) < 1e-9 })
        #expect(null.precision == nil && null.recall == 0 && null.meanDelayMillis == nil)
        let late = Backtest.score(detections: [self.detection(1_000)], windows: [self.window])
        #expect(abs(self.standard(late).normalized - 100 / (Backtest.sigma(-1) + 1)) < 1e-9)
        #expect(late.meanDelayMillis == 1_000)
    }

    @Test("Only the first detection in a window counts; false positives cost A_FP × σ, per profile")
    func falsePositives() {
        let detections = [
            self.detection(-5_000),  // before any window: full cost
            self.detection(250),  // true positive, y = −0.75
            self.detection(600),  // repeated: ignored
            self.detection(1_500),  // half a window length after it: y = 0.5
        ]
        let report = Backtest.score(detections: detections, windows: [self.window])
        #expect(report.verdicts.map(\.1) == [.falsePositive, .truePositive, .repeated, .falsePositive])
        #expect(report.falsePositives == 2 && report.precision == 0.5 && report.recall == 1)
        let reward = Backtest.sigma(-0.75)
        for (score, profile) in zip(report.scores, Backtest.Profile.all) {
            let raw = reward + profile.falsePositive * (-1 + Backtest.sigma(0.5))
            #expect(abs(score.raw - raw) < 1e-12)
            let null = -profile.falseNegative
            #expect(abs(score.normalized - 100 * (raw - null) / (Backtest.sigma(-1) - null)) < 1e-9)
        }
        // reward_low_FP_rate charges twice the standard FP cost; reward_low_FN_rate weighs misses twice.
        #expect(report.scores[1].raw < report.scores[0].raw)
        let missed = Backtest.score(detections: [], windows: [self.window, Backtest.Window(start: 5_000, end: 6_000)])
        #expect(missed.scores.map(\.raw) == [-2, -2, -4])
    }

    @Test("Entity scope: another brand's alert is a false positive; a subject of the brand detects it")
    func scope() {
        let other = Backtest.score(detections: [self.detection(100, "globex", brand: "globex")], windows: [self.window])
        #expect(other.verdicts.map(\.1) == [.falsePositive] && other.recall == 0)
        let subject = Backtest.score(
            detections: [self.detection(100, "acme-post-3", level: .subject, brand: "acme")],
            windows: [self.window]
        )
        #expect(subject.verdicts.map(\.1) == [.truePositive] && subject.recall == 1)
        let streamWide = Backtest.score(
            detections: [self.detection(100, "globex", brand: "globex")],
            windows: [Backtest.Window(start: 0, end: 1_000)]
        )
        #expect(streamWide.recall == 1)
    }

    @Test("The probationary period leaves out early detections and windows")
    func probation() {
        let report = Backtest.score(
            detections: [self.detection(100), self.detection(5_100)],
            windows: [self.window, Backtest.Window(start: 5_000, end: 6_000, level: .brand, entity: "acme")],
            from: 2_000
        )
        #expect(report.windows == 1 && report.detections == 1 && report.recall == 1)
    }
}
