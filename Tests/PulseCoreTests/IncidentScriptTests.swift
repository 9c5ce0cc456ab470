import PulseCore
import Testing

@Suite("Scripted incidents (demo and generate --scenario crises)")
struct IncidentScriptTests {
    let origin: Int64 = 1_795_687_200_000

    @Test("The same stream whatever the tick size")
    func tickIndependent() {
        let coarse = IncidentScript.crises(origin: self.origin)
        let fine = IncidentScript.crises(origin: self.origin)
        let whole = coarse.events(from: 0, to: 400_000).map(\.json)
        var pieces: [String] = []
        var from: Int64 = 0
        while from < 400_000 {
            pieces += fine.events(from: from, to: from + 7).map(\.json)
            from += 7
        }
        #expect(whole.count > 1000)
        #expect(whole == pieces)
    }

    /// Runs the background plus the script through `Replay` with the demo's windows and detection.
    func alerts(scale: Double = 1) -> [(
        change: String, name: String, level: String, entity: String, assessment: String, duplicates: Double
    )] {
        var windows = WindowEngine.Configuration(window: .tumbling(10_000), graceMillis: 5_000, idleCloseMillis: 10_000)
        windows.brands = .local
        var replay = Replay(
            sourceName: "demo",
            engine: WindowEngine(configuration: windows),
            detection: CrisisDetector.Configuration(
                windowMillis: 60_000,
                stepMillis: 10_000,
                lifecycle: .init(forMillis: 10_000, keepFiringForMillis: 60_000, cooldownMillis: 120_000)
            )
        )
        var background = SyntheticEvents()
        let script = IncidentScript.crises(origin: self.origin, scale: scale)
        var lines: [OutputLine] = []
        func feed(_ json: String) {
            lines += Array(json.utf8).withUnsafeBytes { replay.feed($0, offset: 0) }
        }
        // Ten minutes at 500 events/s, the demo's default rate.
        for millisecond in stride(from: Int64(0), to: 600_000, by: 100) {
            for event in script.events(from: millisecond, to: millisecond + 100) { feed(event.json) }
            for step in 0..<50 {
                feed(background.next(occurredAtMillis: self.origin + millisecond + Int64(step) * 2).json)
            }
        }
        lines += replay.finish()
        return lines.filter { $0.topic == "alerts" }.compactMap { line in
            guard case .json(let text) = line.value, let object = parseJSONObject(text),
                let labels = object["labels"] as? [String: String],
                let annotations = object["annotations"] as? [String: String]
            else { return nil }
            return (
                annotations["change"] ?? "", labels["alertname"] ?? "", labels["level"] ?? "", labels["entity"] ?? "",
                annotations["assessment"] ?? "", Double(annotations["duplicate_text_share"] ?? "") ?? -1
            )
        }
    }

    @Test("With the demo's settings: the crisis is organic, the attack coordinated, nothing else fires, both resolve")
    func demoFindsBoth() {
        let alerts = self.alerts()
        let firing = alerts.filter { $0.change == "firing" }
        #expect(
            firing.contains {
                $0.name == CrisisDetector.spikeName && $0.level == "brand" && $0.entity == "brand-7"
                    && $0.assessment == "organic"
            },
            "\(alerts)"
        )
        #expect(
            firing.contains {
                $0.name == CrisisDetector.campaignName && $0.entity == "brand-13"
                    && $0.assessment == "suspected_coordinated"
            },
            "\(alerts)"
        )
        #expect(!firing.contains { $0.entity == "brand-13" && $0.name == CrisisDetector.spikeName }, "\(alerts)")
        // Customers write in their own words; the attack repeats one template.
        #expect(firing.filter { $0.entity == "brand-7" }.allSatisfy { $0.duplicates < 0.3 }, "\(alerts)")
        #expect(firing.filter { $0.entity == "brand-13" }.allSatisfy { $0.duplicates > 0.6 }, "\(alerts)")
        #expect(firing.allSatisfy { ["brand-7", "brand-13", "post-7", "post-13"].contains($0.entity) }, "\(alerts)")
        #expect(alerts.contains { $0.change == "resolved" && $0.entity == "brand-7" }, "\(alerts)")
        #expect(alerts.contains { $0.change == "resolved" && $0.entity == "brand-13" }, "\(alerts)")
    }
}
