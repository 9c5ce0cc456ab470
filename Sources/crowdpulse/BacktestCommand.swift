import ArgumentParser
import Foundation
import PulseCore
import PulseDaemon

/// `crowdpulse backtest --events FILE --labels FILE`: replays a stream and scores its alerts against
/// labelled anomaly windows (NAB scoring, see ``Backtest``), to tune detection thresholds.
struct BacktestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backtest",
        abstract: "Replay events and score the alerts against labelled anomaly windows (NAB scoring).",
        discussion: """
            Detections are alerts that start firing, at their detected_at (event time). The labels file is \
            NAB's combined_windows.json shape ({"entity" or "*": [[start, end], …]}) or JSON (lines) of \
            {"start", "end", "level"?, "entity"?}. Tune with the same keys as run: --set detection.min_negative=20.
            """
    )

    @Option(help: "Events, one JSON object per line (- for standard input).")
    var events: String

    @Option(help: "Labelled anomaly windows (JSON).")
    var labels: String

    @Option(help: "YAML configuration file (detection.*, alerts.*, windows.* …).")
    var config: String?

    @Option(name: .customLong("set"), help: "Override one key, e.g. --set detection.min_negative=20 (repeatable).")
    var overrides: [String] = []

    @Option(help: "Only count alerts of this alertname (repeatable; default: all).")
    var alertname: [String] = []

    @Option(
        help: """
            Ignore detections and windows in the stream's first part: a duration (2d) or a share of the stream's \
            event-time span (15%, NAB's default). Default: none.
            """
    )
    var probation: String?

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @Flag(help: "Also list every detection and window.")
    var verbose = false

    func run() throws {
        let settings = try loadOfflineSettings(config: self.config, overrides: self.overrides)
        guard settings.detection != nil else { throw ValidationError("detection.enabled is false: nothing to score") }
        let labelText: String
        do {
            labelText = try String(contentsOfFile: self.labels, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read --labels \(self.labels): \(error.localizedDescription)")
        }
        let windows: [Backtest.Window]
        do throws(Backtest.LabelError) {
            windows = try Backtest.parseLabels(labelText)
        } catch {
            throw ValidationError("--labels \(self.labels): \(error)")
        }
        var replay = makeReplay(settings: settings, sourceName: self.events)
        try replayFile(self.events, into: &replay) { _ in }
        var from = Int64.min
        if let probation, let span = replay.eventTimeSpan {
            from = span.lowerBound + (try Self.probation(probation, span: span.upperBound - span.lowerBound))
        }
        var detections = replay.detections
        if !self.alertname.isEmpty { detections = detections.filter { self.alertname.contains($0.alertname) } }
        let report = Backtest.score(detections: detections, windows: windows, from: from)
        print(self.json ? Self.json(report) : Self.text(report, verbose: self.verbose))
        FileHandle.standardError.write(Data((replay.summary + "\n").utf8))
    }

    static func probation(_ text: String, span: Int64) throws -> Int64 {
        if text.hasSuffix("%"), let percent = Double(text.dropLast()), percent >= 0, percent <= 100 {
            return Int64(Double(span) * percent / 100)
        }
        do throws(SettingsError) {
            return try Settings.duration("--probation", text)
        } catch {
            throw ValidationError("--probation: '\(text)' is neither a duration (2d) nor a percentage (15%)")
        }
    }

    static func minutes(_ millis: Double) -> String {
        String(format: "%.1f min", millis / 60_000)
    }

    static func text(_ report: Backtest.Report, verbose: Bool) -> String {
        var lines: [String] = []
        if verbose {
            for (detection, verdict) in report.verdicts {
                lines.append(
                    "detection \(RFC3339.format(millis: detection.at)) \(detection.alertname) "
                        + "\(detection.level.rawValue) \(detection.entity): \(verdict.rawValue)"
                )
            }
            for (window, delay) in report.delays {
                let scope = window.entity.map { "\(window.level?.rawValue ?? "any") \($0)" } ?? "whole stream"
                lines.append(
                    "window \(RFC3339.format(millis: window.start))..\(RFC3339.format(millis: window.end)) \(scope): "
                        + (delay.map { "detected after \(Self.minutes(Double($0)))" } ?? "missed")
                )
            }
        }
        lines.append(
            "windows \(report.windows), detected \(report.detectedWindows); detections \(report.detections), "
                + "false positives \(report.falsePositives)"
        )
        lines.append("precision \(report.precision.map { String(format: "%.3f", $0) } ?? "n/a")")
        lines.append("recall \(report.recall.map { String(format: "%.3f", $0) } ?? "n/a")")
        lines.append("mean detection delay \(report.meanDelayMillis.map(Self.minutes) ?? "n/a")")
        for score in report.scores {
            lines.append(
                "NAB \(score.profile): \(String(format: "%.2f", score.normalized)) (raw \(String(format: "%.3f", score.raw)))"
            )
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ report: Backtest.Report) -> String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return String(format: "%.6g", value)
        }
        let scores = report.scores.map { score in
            JSONText.object([
                ("profile", JSONText.quote(score.profile)), ("normalized", number(score.normalized)),
                ("raw", number(score.raw)),
            ])
        }
        return JSONText.object([
            ("windows", String(report.windows)), ("detected_windows", String(report.detectedWindows)),
            ("detections", String(report.detections)), ("false_positives", String(report.falsePositives)),
            ("precision", number(report.precision)), ("recall", number(report.recall)),
            ("mean_delay_seconds", number(report.meanDelayMillis.map { $0 / 1000 })),
            ("scores", "[" + scores.joined(separator: ",") + "]"),
        ])
    }
}
