/// An alert state change as the `crowdpulse.alert/v1` record (schemas/alert.v1.schema.json): an
/// Alertmanager v2 alert (`labels`, `annotations` with string values, `startsAt`, `endsAt`,
/// `generatorURL`) plus `status`, `fingerprint`, `detected_at`, `emitted_at`, `values` (the annotated
/// figures as numbers) and `schema`.
///
/// Everything but `emitted_at` is a function of event time, so replay and live produce the same
/// records. `endsAt` of a firing alert is `detected_at + 2 × resend interval` here (the time by which
/// it lapses unless refreshed); the Alertmanager sender restamps it on the wall clock at each send.
public struct AlertRecord: Sendable {
    public static let schema = "crowdpulse.alert/v1"

    public var event: CrisisDetector.AlertEvent
    public var topNegativeTerms: [String]
    /// Brand level: the subjects with most sampled negative comments.
    public var topSubjects: [(subject: String, comments: Int)]
    public var sampleEventIDs: [String]
    /// Data freshness at the evaluation: the stage's watermark and (live) the consumer lag in messages.
    public var watermark: Int64?
    public var consumerLag: Int64?
    public var runbookURL: String?
    public var generatorURL: String
    public var resendIntervalMillis: Int64

    public init(
        event: CrisisDetector.AlertEvent,
        scorer: MultilingualSentimentScorer = MultilingualSentimentScorer(),
        watermark: Int64?,
        consumerLag: Int64? = nil,
        runbookURL: String? = nil,
        generatorURL: String = "crowdpulse://replay",
        resendIntervalMillis: Int64 = 60_000
    ) {
        self.event = event
        let comments = event.evaluation.comments
        // Terms: summed negative contributions over the sampled comments.
        var weights: [String: Double] = [:]
        for comment in comments {
            for (term, contribution) in scorer.contributions(comment.excerpt, lang: comment.lang) where contribution < 0
            {
                weights[term, default: 0] -= contribution
            }
        }
        self.topNegativeTerms = weights.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(5).map(\.key)
        var subjects: [String: Int] = [:]
        for comment in comments { subjects[comment.subject, default: 0] += 1 }
        self.topSubjects = subjects.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(5).map {
            (subject: $0.key, comments: $0.value)
        }
        // The most recent comments are the ones on-call staff want to open first.
        // Each id read once (a comment decodes its strings from its bytes), not at every comparison.
        self.sampleEventIDs = comments.map { (at: $0.at, id: $0.eventID) }.sorted { ($0.at, $0.id) > ($1.at, $1.id) }
            .prefix(5).map(\.id)
        self.watermark = watermark
        self.consumerLag = consumerLag
        self.runbookURL = runbookURL
        self.generatorURL = generatorURL
        self.resendIntervalMillis = resendIntervalMillis
    }

    public var status: String { self.event.change == .resolved ? "resolved" : "firing" }
    public var fingerprint: String { self.event.fingerprint }

    /// `endsAt` in event time (see the type's note).
    public var endsAt: Int64 {
        self.event.change == .resolved ? self.event.at : self.event.at + 2 * self.resendIntervalMillis
    }

    public var labels: [(String, String)] {
        var labels = [
            ("alertname", self.event.alertname),
            ("level", self.event.level.rawValue),
            ("entity", self.event.entity),
            ("severity", self.event.severity.rawValue),
        ]
        // On both levels (a brand's is itself), so that Alertmanager can group and inhibit by brand.
        if let brand = self.event.brand { labels.append(("brand", brand)) }
        labels.append(("service", "crowdpulse"))
        return labels
    }

    private static func fixed(_ value: Double, _ digits: Int = 2) -> String {
        guard value.isFinite else { return "n/a" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = String(rounded)
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    private static func percent(_ value: Double) -> String { Self.fixed(value * 100, 1) + "%" }

    public var annotations: [(String, String)] {
        let evaluation = self.event.evaluation
        let authenticity = evaluation.authenticity
        let who = "\(self.event.level.rawValue) \(self.event.entity)"
        let verdict = authenticity.verdict.rawValue
        let summary: String
        switch (self.event.alertname, self.event.change) {
        case (CrisisDetector.campaignName, .resolved): summary = "Coordinated negative campaign against \(who) is over"
        case (CrisisDetector.campaignName, _): summary = "Suspected coordinated negative campaign against \(who)"
        case (_, .resolved): summary = "Negative sentiment spike on \(who) is over"
        case (_, .escalated):
            summary = "Negative sentiment spike on \(who) escalated to \(self.event.severity.rawValue)"
        default: summary = "Negative sentiment spike on \(who)"
        }
        let description =
            "\(evaluation.negative) negative comments in the last \(evaluation.scored) scored "
            + "(\(Self.percent(evaluation.share)) negative vs \(Self.percent(evaluation.baselineShare)) usually); "
            + "expected about \(Self.fixed(evaluation.expectedNegative, 1)) per window, z = \(Self.fixed(evaluation.z)). "
            + "Assessment: \(verdict) (coordinated share \(Self.percent(authenticity.coordinatedShare)), "
            + "organic negative volume \(Self.fixed(evaluation.organicNegative, 1)); "
            + "new accounts \(Self.percent(authenticity.newAccountShare)), "
            + "verified customers \(Self.percent(authenticity.verifiedCustomerShare)))."
        var annotations: [(String, String)] = [
            ("summary", summary),
            ("description", description),
            ("change", self.event.change.rawValue),
            ("observed_negative", String(evaluation.negative)),
            ("expected_negative", Self.fixed(evaluation.expectedNegative)),
            ("z", Self.fixed(evaluation.z)),
            ("negative_share", Self.fixed(evaluation.share, 4)),
            ("baseline_negative_share", Self.fixed(evaluation.baselineShare, 4)),
            ("share_z", Self.fixed(evaluation.shareZ)),
            ("total_volume", String(evaluation.scored)),
            ("baseline_history_hours", String(evaluation.historyHours)),
            ("top_negative_terms", self.topNegativeTerms.joined(separator: ", ")),
            ("sample_event_ids", self.sampleEventIDs.joined(separator: ", ")),
            ("assessment", verdict),
            ("coordinated_share", Self.fixed(authenticity.coordinatedShare, 4)),
            ("organic_negative_volume", Self.fixed(evaluation.organicNegative, 1)),
            ("new_account_share", Self.fixed(authenticity.newAccountShare, 4)),
            ("duplicate_text_share", Self.fixed(authenticity.duplicateShare, 4)),
            ("largest_duplicate_cluster", String(authenticity.largestCluster)),
            ("top10_author_share", Self.fixed(authenticity.top10AuthorShare, 4)),
            ("author_hhi", Self.fixed(authenticity.authorHHI, 4)),
            ("burst_synchrony", Self.fixed(authenticity.burstSynchrony, 4)),
            ("verified_customer_share", Self.fixed(authenticity.verifiedCustomerShare, 4)),
            ("sampled_comments", String(authenticity.sampleSize)),
            ("watermark", self.watermark.map { RFC3339.format(millis: $0) } ?? "n/a"),
            ("consumer_lag", self.consumerLag.map { String($0) } ?? "n/a"),
        ]
        if self.event.level == .brand {
            annotations.append(
                ("top_subjects", self.topSubjects.map { "\($0.subject) (\($0.comments))" }.joined(separator: ", "))
            )
        }
        if let previous = self.event.previousSeverity { annotations.append(("previous_severity", previous.rawValue)) }
        if let runbook = self.runbookURL { annotations.append(("runbook_url", runbook)) }
        return annotations
    }

    public var values: [(String, String)] {
        let evaluation = self.event.evaluation
        let authenticity = evaluation.authenticity
        let number: (Double) -> String = MetricsRecord.number
        return [
            ("observed_negative", String(evaluation.negative)),
            ("expected_negative", number(evaluation.expectedNegative)),
            ("spread", number(evaluation.spread)),
            ("z", number(evaluation.z)),
            ("negative_share", number(evaluation.share)),
            ("baseline_negative_share", number(evaluation.baselineShare)),
            ("share_z", number(evaluation.shareZ)),
            ("total_volume", String(evaluation.scored)),
            ("organic_negative_volume", number(evaluation.organicNegative)),
            ("coordinated_share", number(authenticity.coordinatedShare)),
            ("new_account_share", number(authenticity.newAccountShare)),
            ("duplicate_text_share", number(authenticity.duplicateShare)),
            ("largest_duplicate_cluster", String(authenticity.largestCluster)),
            ("top10_author_share", number(authenticity.top10AuthorShare)),
            ("author_hhi", number(authenticity.authorHHI)),
            ("burst_synchrony", number(authenticity.burstSynchrony)),
            ("verified_customer_share", number(authenticity.verifiedCustomerShare)),
            ("sampled_comments", String(authenticity.sampleSize)),
            ("watermark_ms", self.watermark.map { String($0) } ?? "null"),
            ("consumer_lag", self.consumerLag.map { String($0) } ?? "null"),
        ]
    }

    /// The alerts-topic record.
    public func render(emittedAt: Int64) -> String {
        JSONText.object([
            ("schema", JSONText.quote(Self.schema)),
            ("status", JSONText.quote(self.status)),
            ("fingerprint", JSONText.quote(self.fingerprint)),
            ("labels", AlertmanagerPayload.strings(self.labels)),
            ("annotations", AlertmanagerPayload.strings(self.annotations)),
            ("startsAt", JSONText.quote(RFC3339.format(millis: self.event.startsAt))),
            ("endsAt", JSONText.quote(RFC3339.format(millis: self.endsAt))),
            ("generatorURL", JSONText.quote(self.generatorURL)),
            ("detected_at", JSONText.quote(RFC3339.format(millis: self.event.detectedAt))),
            ("emitted_at", JSONText.quote(RFC3339.format(millis: emittedAt))),
            ("values", JSONText.object(self.values)),
        ])
    }
}
