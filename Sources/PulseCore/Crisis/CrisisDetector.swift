/// Negative-spike detection for the entities of one level (subjects or brands), on event time
/// (design §5). Fed the final metric records of tumbling windows of `step` (the metric windows'
/// default: 1 minute), it evaluates every entity at each step boundary once the watermark has passed
/// it, over a hopping window of `window` (default 5 minutes): the last five one-minute buckets.
///
/// The condition, for `NegativeSentimentSpike`, all of:
/// - organic negative volume (negative × (1 − coordinated share)) ≥ `minNegative`;
/// - its robust z against the entity's own seasonal baseline ≥ 3 (`warning`; ≥ 5 or
///   ≥ `criticalVolume` is `critical`). The baseline is the median of the same hour of day over the
///   previous days (±1 hour) once two days are known, else of the last 24 hours; spread is
///   1.4826·MAD with a Poisson floor √median, so a quiet entity needs a real wave, not three comments;
/// - the negative *share* is above its baseline by ≥ `shareZ` standard errors. The share baseline is
///   the entity's history shrunk towards its brand's share (subjects) or the whole stream's (brands),
///   so a new entity borrows a prior (cold start), and growth or a daily peak of ordinary traffic —
///   more comments with the usual share of negative ones — never qualifies.
///
/// `CoordinatedNegativeCampaign` (at `warning` only) uses the same tests on the coordinated part of the
/// volume, when the coordinated share reaches `mixedAt`. Each alert name has its own lifecycle.
public struct CrisisDetector: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var windowMillis: Int64
        public var stepMillis: Int64
        /// `detection.min_negative`: negative comments (organic ones for the spike) within one window.
        public var minNegative: Int
        public var warningZ: Double
        public var criticalZ: Double
        /// Organic negative volume in one window that is critical whatever the baseline.
        public var criticalVolume: Int
        /// Standard errors the negative share must exceed its baseline by.
        public var shareZ: Double
        /// The (organic or coordinated) negative volume must be at least this multiple of the expected.
        public var minLift: Double
        public var mixedAt: Double
        public var coordinatedAt: Double
        public var lifecycle: AlertLifecycle.Configuration
        /// Entities with no data, no alert and nothing pending for this long are forgotten.
        public var idleTTLMillis: Int64
        public var maxEntities: Int

        public init(
            windowMillis: Int64 = 300_000,
            stepMillis: Int64 = 60_000,
            minNegative: Int = 15,
            warningZ: Double = 3,
            criticalZ: Double = 5,
            criticalVolume: Int = 250,
            shareZ: Double = 4,
            minLift: Double = 2,
            mixedAt: Double = 0.3,
            coordinatedAt: Double = 0.6,
            lifecycle: AlertLifecycle.Configuration = .init(),
            idleTTLMillis: Int64 = 8 * 86_400_000,
            maxEntities: Int = 200_000
        ) {
            self.windowMillis = windowMillis
            self.stepMillis = stepMillis
            self.minNegative = minNegative
            self.warningZ = warningZ
            self.criticalZ = criticalZ
            self.criticalVolume = criticalVolume
            self.shareZ = shareZ
            self.minLift = minLift
            self.mixedAt = mixedAt
            self.coordinatedAt = coordinatedAt
            self.lifecycle = lifecycle
            self.idleTTLMillis = idleTTLMillis
            self.maxEntities = maxEntities
        }
    }

    /// The figures of one evaluation, which the alert explains.
    public struct Evaluation: Sendable, Equatable {
        public var at: Int64
        public var negative: Int
        public var scored: Int
        public var organicNegative: Double
        /// Expected negative comments per window, and the spread the z uses.
        public var expectedNegative: Double
        public var spread: Double
        /// z of the organic (spike) or coordinated (campaign) volume.
        public var z: Double
        public var share: Double
        public var baselineShare: Double
        public var shareZ: Double
        public var historyHours: Int
        public var authenticity: AuthenticityAssessment
        public var comments: [NegativeComment]
    }

    /// A state change of one alert.
    public struct AlertEvent: Sendable, Equatable {
        public enum Change: String, Sendable {
            case firing, escalated, resolved
        }

        public var change: Change
        public var alertname: String
        public var level: EntityLevel
        public var entity: String
        public var brand: String?
        public var severity: AlertSeverity
        public var previousSeverity: AlertSeverity?
        public var startsAt: Int64
        public var detectedAt: Int64
        /// Event time of this change (the evaluation).
        public var at: Int64
        public var evaluation: Evaluation

        /// Hash of `alertname`, `level` and `entity`: stable across escalation.
        public var fingerprint: String { Self.fingerprint(self.alertname, self.level, self.entity) }

        public static func fingerprint(_ alertname: String, _ level: EntityLevel, _ entity: String) -> String {
            let hash = stableHash("\(alertname)\u{1F}\(level.rawValue)\u{1F}\(entity)")
            let hex = String(hash, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }
    }

    public static let spikeName = "NegativeSentimentSpike"
    public static let campaignName = "CoordinatedNegativeCampaign"

    struct Bucket: Sendable {
        var start: Int64
        var negative: Int
        var scored: Int
        var evidence: CrisisEvidence?
    }

    /// Hourly negative and scored counts over the last `hours` hours, indexed by absolute hour.
    ///
    /// Sparse: only hours with data are stored (12 bytes each), oldest first. Most entities (posts) are
    /// active for a few hours; a dense ring of 192 hours took 1.5 KiB each, 300 MiB for a detector at its
    /// entity cap.
    struct HourlyHistory: Sendable {
        static let hours = 8 * 24

        struct Entry: Sendable {
            var hour: Int64
            var negative: UInt32
            var scored: UInt32
        }

        private(set) var entries: [Entry] = []
        /// Absolute hour of the first observation; hours before it were never observed.
        var firstHour: Int64
        var latestHour: Int64

        init(firstHour: Int64) {
            self.firstHour = firstHour
            self.latestHour = firstHour
        }

        /// The oldest hour still remembered.
        private var oldest: Int64 { max(self.firstHour, self.latestHour - Int64(Self.hours) + 1) }

        mutating func add(hour: Int64, negative: Int, scored: Int) {
            if hour > self.latestHour {
                self.latestHour = hour
                let oldest = self.oldest
                if let first = self.entries.first, first.hour < oldest {
                    self.entries.removeFirst(self.entries.firstIndex { $0.hour >= oldest } ?? self.entries.count)
                }
            }
            guard hour >= self.oldest else { return }
            let index = self.index(of: hour)
            if index < self.entries.count && self.entries[index].hour == hour {
                self.entries[index].negative &+= UInt32(clamping: negative)
                self.entries[index].scored &+= UInt32(clamping: scored)
            } else {
                self.entries.insert(
                    Entry(hour: hour, negative: UInt32(clamping: negative), scored: UInt32(clamping: scored)),
                    at: index
                )
            }
        }

        /// The position of `hour` (or where it would go); records arrive roughly in time order, so look from
        /// the end first.
        private func index(of hour: Int64) -> Int {
            if let last = self.entries.last, last.hour < hour { return self.entries.count }
            var low = 0
            var high = self.entries.count
            while low < high {
                let middle = (low + high) / 2
                if self.entries[middle].hour < hour { low = middle + 1 } else { high = middle }
            }
            return low
        }

        func known(_ hour: Int64) -> Bool {
            hour >= self.oldest && hour <= self.latestHour
        }

        func value(_ hour: Int64) -> (negative: Int, scored: Int) {
            guard self.known(hour) else { return (0, 0) }
            let index = self.index(of: hour)
            guard index < self.entries.count, self.entries[index].hour == hour else { return (0, 0) }
            return (Int(self.entries[index].negative), Int(self.entries[index].scored))
        }

        /// Sums over the known hours from `hour − 1` back to `hour − hours` (nothing when `hour − 1` is not
        /// known): the entity's past, for its share baseline.
        func sum(before hour: Int64) -> (negative: Double, scored: Double) {
            guard self.known(hour - 1) else { return (0, 0) }
            let bottom = max(hour - Int64(Self.hours), self.oldest)
            var negative = 0.0
            var scored = 0.0
            for entry in self.entries where entry.hour >= bottom && entry.hour < hour {
                negative += Double(entry.negative)
                scored += Double(entry.scored)
            }
            return (negative, scored)
        }

        /// Approximate heap bytes.
        var bytes: Int { 32 + self.entries.capacity * MemoryLayout<Entry>.stride }
    }

    /// What a final record contributes to the detector.
    struct Observation: Sendable {
        var entity: String
        var start: Int64
        var brand: String?
        var negative: Int
        var scored: Int
        var crisis: CrisisEvidence?

        /// Whether it opens a bucket (what evaluation looks at).
        var isScored: Bool { self.scored > 0 || self.crisis != nil }
    }

    struct EntityState: Sendable {
        var brand: String?
        var buckets: [Bucket] = []
        var history: HourlyHistory
        var spike: AlertLifecycle
        var campaign: AlertLifecycle
        var spikeDetected: Int64?
        var campaignDetected: Int64?
        var spikeOnset: Int64?
        var campaignOnset: Int64?
        /// The assessment at the last evaluation that breached while firing: a resolution reports the
        /// excursion's, not that of the quiet window that ended it.
        var spikeAssessment: AuthenticityAssessment?
        var campaignAssessment: AuthenticityAssessment?
        var lastSeen: Int64
    }

    public let configuration: Configuration
    public let level: EntityLevel
    private var entities: [String: EntityState] = [:]
    /// Purchasers per brand (user hashes), for the verified-customer share; bounded per brand.
    private var buyers: [String: Set<UInt64>] = [:]
    private static let buyersPerBrand = 50_000
    /// Negative and scored comments per brand and overall, for the share priors.
    private var brandTotals: [String: (negative: Double, scored: Double)] = [:]
    private var globalTotals: (negative: Double, scored: Double) = (0, 0)
    /// The last step boundary evaluated.
    public private(set) var evaluatedThrough: Int64 = Int64.min
    /// Final records observed but not applied yet: each is applied when evaluation reaches its window, so
    /// that an evaluation never sees later windows, however many windows closed before it ran (a consumer
    /// catching up closes many at once; a steady one, one at a time). Results thus do not depend on
    /// batching, which a restore from a checkpoint followed by re-processing relies on.
    private var inbox: [Observation] = []
    public private(set) var evictions = 0
    /// The encoding of this version of the state, for checkpoints. The state changes only when windows
    /// close (once a window step), and is checkpointed at every commit (every second): at 50 000 events/s
    /// that rewrote about 0.9 MB per input partition per second, the same bytes most of the time. Renewed
    /// by ``observe(_:)`` and ``advance(to:)``, the only ways to change the state.
    private var sealed = SealedEncoding()

    public init(level: EntityLevel, configuration: Configuration = Configuration()) {
        self.level = level
        self.configuration = configuration
    }

    public var entityCount: Int { self.entities.count }

    /// Entities whose spike or campaign alert is firing.
    public var firing: [(entity: String, alertname: String, severity: AlertSeverity)] {
        var result: [(String, String, AlertSeverity)] = []
        for (entity, state) in self.entities {
            if case .firing(_, let severity, _) = state.spike.state {
                result.append((entity, Self.spikeName, severity))
            }
            if case .firing(_, let severity, _) = state.campaign.state {
                result.append((entity, Self.campaignName, severity))
            }
        }
        return result.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
    }

    /// Takes one final metric record of this level.
    public mutating func observe(_ record: MetricsRecord) {
        guard record.isFinal, record.key.level == self.level else { return }
        SealedEncoding.renewed(&self.sealed)
        let aggregate = record.aggregate
        self.inbox.append(
            Observation(
                entity: record.key.entity,
                start: record.windowStart,
                brand: self.level == .brand ? record.key.entity : aggregate.brand,
                negative: aggregate.negative,
                scored: aggregate.scored,
                crisis: aggregate.crisis
            )
        )
    }

    /// Applies the observations of windows that start before `boundary`, in the order they came.
    private mutating func applyInbox(before boundary: Int64) {
        guard self.inbox.contains(where: { $0.start < boundary }) else { return }
        var later: [Observation] = []
        for observation in self.inbox {
            if observation.start < boundary { self.apply(observation) } else { later.append(observation) }
        }
        self.inbox = later
    }

    private mutating func apply(_ observation: Observation) {
        let entity = observation.entity
        let start = observation.start
        let hour = start / 3_600_000
        if self.entities[entity] == nil && self.entities.count >= self.configuration.maxEntities { self.evict() }
        var state =
            self.entities.removeValue(forKey: entity)
            ?? EntityState(
                brand: nil,
                history: HourlyHistory(firstHour: hour),
                spike: AlertLifecycle(configuration: self.configuration.lifecycle),
                campaign: AlertLifecycle(configuration: self.configuration.lifecycle),
                lastSeen: start
            )
        let brand = observation.brand
        if let brand { state.brand = brand }
        state.lastSeen = max(state.lastSeen, start)
        state.history.add(hour: hour, negative: observation.negative, scored: observation.scored)
        if observation.scored > 0 || observation.crisis != nil {
            state.buckets.append(
                Bucket(
                    start: start,
                    negative: observation.negative,
                    scored: observation.scored,
                    evidence: observation.crisis
                )
            )
        }
        self.entities[entity] = state
        if let brand, let purchasers = observation.crisis?.buyers, !purchasers.isEmpty {
            // In place: copying a brand's set of up to 50 000 buyers per record would be quadratic.
            for buyer in purchasers where self.buyers[brand, default: []].count < Self.buyersPerBrand {
                self.buyers[brand, default: []].insert(buyer)
            }
        }
        if observation.scored > 0 {
            if let brand {
                var totals = self.brandTotals[brand, default: (0, 0)]
                totals.negative += Double(observation.negative)
                totals.scored += Double(observation.scored)
                if totals.scored > 1e6 { totals = (totals.negative / 2, totals.scored / 2) }
                self.brandTotals[brand] = totals
            }
            self.globalTotals.negative += Double(observation.negative)
            self.globalTotals.scored += Double(observation.scored)
            if self.globalTotals.scored > 1e7 {
                self.globalTotals = (self.globalTotals.negative / 2, self.globalTotals.scored / 2)
            }
        }
    }

    /// Evaluates every step boundary up to `watermark` (records of windows ending by it must have been
    /// observed). Returns the alert state changes, in event-time order.
    public mutating func advance(to watermark: Int64) -> [AlertEvent] {
        let step = self.configuration.stepMillis
        guard watermark != Int64.min else { return [] }
        SealedEncoding.renewed(&self.sealed)
        let through = Self.floor(watermark, step)
        if self.evaluatedThrough == Int64.min {
            // Start at the first boundary after the earliest data.
            let buffered = self.inbox.lazy.filter(\.isScored).map(\.start).min()
            guard
                let earliest = [self.entities.values.compactMap({ $0.buckets.first?.start }).min(), buffered]
                    .compactMap({ $0 }).min()
            else { return [] }
            self.evaluatedThrough = Self.floor(earliest, step)
        }
        var events: [AlertEvent] = []
        var boundary = self.evaluatedThrough + step
        while boundary <= through {
            self.applyInbox(before: boundary)
            events += self.evaluate(at: boundary)
            self.evaluatedThrough = boundary
            boundary += step
            // Quiet stretch: with no alert live and every bucket still ahead, jump to the first of them.
            if !self.hasLiveLifecycle {
                let pending =
                    self.entities.values.compactMap { $0.buckets.first?.start }
                    + self.inbox.filter(\.isScored).map(\.start)
                if pending.allSatisfy({ $0 >= boundary }) {
                    let next = pending.min().map { Self.floor($0, step) + step } ?? through + step
                    if next > boundary {
                        boundary = next
                        self.evaluatedThrough = min(through, next - step)
                    }
                }
            }
        }
        return events
    }

    private var hasLiveLifecycle: Bool {
        self.entities.values.contains { $0.spike.state != .inactive || $0.campaign.state != .inactive }
    }

    static func floor(_ value: Int64, _ step: Int64) -> Int64 {
        value >= 0 ? value / step * step : ((value - step + 1) / step) * step
    }

    private mutating func evaluate(at time: Int64) -> [AlertEvent] {
        var events: [AlertEvent] = []
        let windowStart = time - self.configuration.windowMillis
        for entity in Array(self.entities.keys) {
            var state = self.entities[entity]!
            state.buckets.removeAll { $0.start < windowStart }
            let buckets = state.buckets.filter { $0.start < time }
            let live = state.spike.state != .inactive || state.campaign.state != .inactive
            if buckets.isEmpty && !live {
                if time - state.lastSeen > self.configuration.idleTTLMillis {
                    self.entities[entity] = nil
                    self.evictions += 1
                } else {
                    self.entities[entity] = state
                }
                continue
            }
            let evaluation = self.evaluation(of: state, buckets: buckets, at: time, force: live)
            var spikeSeverity: AlertSeverity? = nil
            var campaignSeverity: AlertSeverity? = nil
            if let evaluation {
                let configuration = self.configuration
                let shareHigh = evaluation.shareZ >= configuration.shareZ
                let organicZ = (evaluation.organicNegative - evaluation.expectedNegative) / evaluation.spread
                let expected = max(evaluation.expectedNegative, 1)
                if shareHigh && evaluation.organicNegative >= Double(configuration.minNegative)
                    && organicZ >= configuration.warningZ
                    && evaluation.organicNegative >= configuration.minLift * expected
                {
                    spikeSeverity =
                        organicZ >= configuration.criticalZ
                            || evaluation.organicNegative >= Double(configuration.criticalVolume)
                        ? .critical : .warning
                }
                let coordinated = Double(evaluation.negative) - evaluation.organicNegative
                let coordinatedZ = (coordinated - evaluation.expectedNegative) / evaluation.spread
                if shareHigh && evaluation.authenticity.coordinatedShare >= configuration.mixedAt
                    && coordinated >= Double(configuration.minNegative) && coordinatedZ >= configuration.warningZ
                    && coordinated >= configuration.minLift * expected
                {
                    campaignSeverity = .warning
                }
                for (alertname, severity, z) in [
                    (Self.spikeName, spikeSeverity, organicZ), (Self.campaignName, campaignSeverity, coordinatedZ),
                ] {
                    var current = evaluation
                    current.z = z
                    let isSpike = alertname == Self.spikeName
                    let actions =
                        isSpike
                        ? state.spike.evaluate(at: time, breaching: severity)
                        : state.campaign.evaluate(at: time, breaching: severity)
                    events += self.events(actions, alertname, entity, state, current, &state)
                    if severity != nil && (isSpike ? state.spike.isFiring : state.campaign.isFiring) {
                        if isSpike {
                            state.spikeAssessment = current.authenticity
                        } else {
                            state.campaignAssessment = current.authenticity
                        }
                    }
                }
            }
            // No evaluation means both lifecycles are inactive and the window is quiet: nothing to do.
            self.entities[entity] = state
        }
        // Dictionary order is arbitrary: sort the (few) changes, not the (many) entities.
        return events.sorted { ($0.entity, $0.alertname) < ($1.entity, $1.alertname) }
    }

    private func events(
        _ actions: [AlertLifecycle.Action],
        _ alertname: String,
        _ entity: String,
        _ snapshot: EntityState,
        _ evaluation: Evaluation,
        _ state: inout EntityState
    ) -> [AlertEvent] {
        actions.map { action in
            let isSpike = alertname == Self.spikeName
            var reported = evaluation
            let onset = isSpike ? snapshot.spikeOnset : snapshot.campaignOnset
            let detected = isSpike ? snapshot.spikeDetected : snapshot.campaignDetected
            let change: AlertEvent.Change
            let severity: AlertSeverity
            var previous: AlertSeverity? = nil
            let startsAt: Int64
            let detectedAt: Int64
            let at: Int64
            switch action {
            case .fire(let fired, let since, let evaluatedAt):
                // The onset of the wave is its first negative comment in the window that first breached.
                let first = evaluation.comments.map(\.at).min().map { min($0, since) } ?? since
                (change, severity, at, detectedAt) = (.firing, fired, evaluatedAt, evaluatedAt)
                startsAt = max(first, since - self.configuration.windowMillis)
                if isSpike {
                    (state.spikeDetected, state.spikeOnset) = (evaluatedAt, startsAt)
                } else {
                    (state.campaignDetected, state.campaignOnset) = (evaluatedAt, startsAt)
                }
            case .escalate(let from, let to, let evaluatedAt):
                (change, severity, previous, at) = (.escalated, to, from, evaluatedAt)
                (startsAt, detectedAt) = (onset ?? evaluatedAt, detected ?? evaluatedAt)
            case .resolve(let last, let since, let endsAt):
                (change, severity, at) = (.resolved, last, endsAt)
                if let kept = isSpike ? snapshot.spikeAssessment : snapshot.campaignAssessment {
                    reported.authenticity = kept
                }
                (startsAt, detectedAt) = (onset ?? since, detected ?? since)
            }
            return AlertEvent(
                change: change,
                alertname: alertname,
                level: self.level,
                entity: entity,
                brand: snapshot.brand,
                severity: severity,
                previousSeverity: previous,
                startsAt: startsAt,
                detectedAt: detectedAt,
                at: at,
                evaluation: reported
            )
        }
    }

    /// The figures for one entity at `time`; `nil` when the window has too few negative comments, or too
    /// low a share of them, to matter (the assessment is not worth computing), unless `force`d.
    private func evaluation(of state: EntityState, buckets: [Bucket], at time: Int64, force: Bool) -> Evaluation? {
        let negative = buckets.reduce(0) { $0 + $1.negative }
        let scored = buckets.reduce(0) { $0 + $1.scored }
        guard force || negative >= self.configuration.minNegative else { return nil }

        // Share baseline: the entity's past share shrunk towards its brand's (subjects) or the stream's.
        let hour = time / 3_600_000
        let history = state.history
        let (pastNegative, pastScored) = history.sum(before: hour)
        let prior = self.prior(for: state)
        let strength = 200.0
        let baselineShare = min(0.95, max(0.02, (pastNegative + strength * prior) / (pastScored + strength)))
        let share = scored > 0 ? Double(negative) / Double(scored) : 0
        let shareZ =
            scored > 0
            ? (share - baselineShare) / (baselineShare * (1 - baselineShare) / Double(scored)).squareRoot() : 0

        // Both alerts need the share to be high: below that, an entity with no live alert has nothing to
        // evaluate (its lifecycles stay inactive), so the volume baseline and the authenticity assessment,
        // the costly part, are only worked out for the few entities whose share stands out.
        guard force || shareZ >= self.configuration.shareZ else { return nil }

        // Volume baseline: robust statistics of past hourly negatives scaled to one window.
        let scale = Double(self.configuration.windowMillis) / 3_600_000
        var samples: [Double] = []
        let knownHours = Int(min(Int64(HourlyHistory.hours), max(0, hour - history.firstHour)))
        if knownHours >= 48 {
            for day in 1...7 {
                for offset in -1...1 {
                    let past = hour - Int64(24 * day) + Int64(offset)
                    if past < hour, history.known(past) { samples.append(Double(history.value(past).negative) * scale) }
                }
            }
        }
        if samples.count < 3 {
            samples = []
            var past = hour - 1
            while past >= hour - 24 && history.known(past) {
                samples.append(Double(history.value(past).negative) * scale)
                past -= 1
            }
        }
        let expected = samples.isEmpty ? 0 : Self.median(samples)
        let mad = samples.isEmpty ? 0 : Self.median(samples.map { abs($0 - expected) })
        let spread = max(1.4826 * mad, max(expected, 1).squareRoot())

        // Authenticity over the window's sampled negatives.
        var comments: [NegativeComment] = []
        var newAccounts = 0
        var withAge = 0
        for bucket in buckets {
            guard let evidence = bucket.evidence else { continue }
            comments += evidence.comments
            newAccounts += evidence.newAccounts
            withAge += evidence.withAccountAge
        }
        comments.sort { ($0.at, $0.sampleKey) < ($1.at, $1.sampleKey) }
        let brandBuyers = state.brand.flatMap { self.buyers[$0] } ?? []
        let authenticity = AuthenticityAssessment.assess(
            comments,
            newAccounts: (newAccounts, withAge),
            isBuyer: { brandBuyers.contains($0) },
            mixedAt: self.configuration.mixedAt,
            coordinatedAt: self.configuration.coordinatedAt
        )
        return Evaluation(
            at: time,
            negative: negative,
            scored: scored,
            organicNegative: Double(negative) * (1 - authenticity.coordinatedShare),
            expectedNegative: expected,
            spread: spread,
            z: 0,
            share: share,
            baselineShare: baselineShare,
            shareZ: shareZ,
            historyHours: knownHours,
            authenticity: authenticity,
            comments: comments
        )
    }

    /// The share of negative comments a new entity is assumed to have: its brand's so far (subjects), the
    /// whole stream's (brands, or a subject of a brand not seen yet), 0.2 before anything is known.
    private func prior(for state: EntityState) -> Double {
        if self.level == .subject, let brand = state.brand, let totals = self.brandTotals[brand], totals.scored >= 50 {
            return totals.negative / totals.scored
        }
        if self.globalTotals.scored >= 50 { return self.globalTotals.negative / self.globalTotals.scored }
        return 0.2
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// Makes room under the entity cap, dropping entities with no live alert, least recently seen first.
    ///
    /// Evicts a twentieth of the cap at once, the least recently seen first: one sweep per many new
    /// entities, not one per new entity (which made a stream of a million distinct subjects quadratic).
    private mutating func evict() {
        let batch = max(1, self.configuration.maxEntities / 20)
        let candidates = self.entities.filter {
            $0.value.spike.state == .inactive && $0.value.campaign.state == .inactive
        }
        .map { (key: $0.key, lastSeen: $0.value.lastSeen) }
        .sorted { ($0.lastSeen, $0.key) < ($1.lastSeen, $1.key) }
        for candidate in candidates.prefix(batch) {
            self.entities[candidate.key] = nil
            self.evictions += 1
        }
    }
}

// MARK: - Binary state

extension CrisisDetector {
    static let stateVersion: UInt8 = 1

    /// Appends the detector's state in the binary format (``BinaryWriter``), for checkpoints: its level,
    /// progress and counters, the share priors, every entity (buckets, hourly history, both alert
    /// lifecycles with their onsets and assessments) and the brands' buyers.
    ///
    /// Entities, brands and buyers are written in ascending order, so that the same state always gives the
    /// same bytes; shares and totals bit for bit. The configuration is not written.
    ///
    /// Encoded once per version of the state (``SealedEncoding``), and a segment of its own when the
    /// writer is segmenting: a checkpoint of a detector that did not change since the last one only names
    /// it.
    public func write(to writer: inout BinaryWriter) {
        writer.sealed(self.sealed) { self.encode(to: &$0) }
    }

    private func encode(to writer: inout BinaryWriter) {
        writer.byte(Self.stateVersion)
        writer.byte(self.level.code)
        writer.int(self.evaluatedThrough)
        writer.int(self.evictions)
        writer.double(self.globalTotals.negative)
        writer.double(self.globalTotals.scored)

        writer.varint(UInt64(self.entities.count))
        for entity in self.entities.keys.sorted() {
            writer.string(entity)
            self.entities[entity]?.write(to: &writer)
        }

        writer.varint(UInt64(self.buyers.count))
        for brand in self.buyers.keys.sorted() {
            let buyers = self.buyers[brand, default: []].sorted()
            writer.string(brand)
            writer.varint(UInt64(buyers.count))
            for buyer in buyers { writer.fixed64(buyer) }
        }

        writer.varint(UInt64(self.brandTotals.count))
        for brand in self.brandTotals.keys.sorted() {
            let totals = self.brandTotals[brand] ?? (0, 0)
            writer.string(brand)
            writer.double(totals.negative)
            writer.double(totals.scored)
        }

        writer.varint(UInt64(self.inbox.count))
        for observation in self.inbox {
            writer.string(observation.entity)
            writer.int(observation.start)
            writer.optional(observation.brand) { $0.string($1) }
            writer.int(observation.negative)
            writer.int(observation.scored)
            writer.optional(observation.crisis) { $1.write(to: &$0) }
        }
    }

    /// Restores a detector written by ``write(to:)``.
    ///
    /// - Parameters:
    ///   - level: the level the detector watches; it must be the one the state was written for.
    ///   - configuration: the current configuration (its lifecycle settings apply to the restored alerts).
    /// - Throws: ``BinaryDecodingError`` when the bytes are truncated, do not describe a valid state, or
    ///   belong to the other level.
    public init(
        reading reader: inout BinaryReader,
        level: EntityLevel,
        configuration: Configuration
    ) throws(BinaryDecodingError) {
        try reader.version(Self.stateVersion, of: "crisis detector")
        let written = try EntityLevel(reading: &reader)
        guard written == level else { throw reader.error("\(written.rawValue) state for a \(level.rawValue) detector") }
        self.init(level: level, configuration: configuration)
        self.evaluatedThrough = try reader.int64()
        self.evictions = try reader.counter()
        self.globalTotals = (try reader.double(), try reader.double())

        let entityCount = try reader.count()
        self.entities.reserveCapacity(entityCount)
        for _ in 0..<entityCount {
            let entity = try reader.string()
            let state = try EntityState(reading: &reader, lifecycle: configuration.lifecycle)
            guard self.entities.updateValue(state, forKey: entity) == nil else {
                throw reader.error("entity written twice")
            }
        }

        for _ in 0..<(try reader.count()) {
            let brand = try reader.string()
            let count = try reader.count()
            var buyers = Set<UInt64>(minimumCapacity: count)
            for _ in 0..<count {
                guard buyers.insert(try reader.fixed64()).inserted else { throw reader.error("buyer written twice") }
            }
            guard self.buyers.updateValue(buyers, forKey: brand) == nil else {
                throw reader.error("buyers of a brand written twice")
            }
        }

        for _ in 0..<(try reader.count()) {
            let brand = try reader.string()
            let totals = (negative: try reader.double(), scored: try reader.double())
            guard self.brandTotals.updateValue(totals, forKey: brand) == nil else {
                throw reader.error("brand totals written twice")
            }
        }

        for _ in 0..<(try reader.count()) {
            self.inbox.append(
                Observation(
                    entity: try reader.string(),
                    start: try reader.int64(),
                    brand: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                        try reader.string()
                    },
                    negative: try reader.counter(),
                    scored: try reader.counter(),
                    crisis: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                        try CrisisEvidence(reading: &reader)
                    }
                )
            )
        }
    }
}

extension CrisisDetector.EntityState {
    func write(to writer: inout BinaryWriter) {
        writer.optional(self.brand) { $0.string($1) }
        writer.varint(UInt64(self.buckets.count))
        for bucket in self.buckets { bucket.write(to: &writer) }
        self.history.write(to: &writer)
        self.spike.write(to: &writer)
        self.campaign.write(to: &writer)
        writer.optionalInt(self.spikeDetected)
        writer.optionalInt(self.campaignDetected)
        writer.optionalInt(self.spikeOnset)
        writer.optionalInt(self.campaignOnset)
        writer.optional(self.spikeAssessment) { $1.write(to: &$0) }
        writer.optional(self.campaignAssessment) { $1.write(to: &$0) }
        writer.int(self.lastSeen)
    }

    init(reading reader: inout BinaryReader, lifecycle: AlertLifecycle.Configuration) throws(BinaryDecodingError) {
        let brand = try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
            try reader.string()
        }
        let bucketCount = try reader.count()
        var buckets: [CrisisDetector.Bucket] = []
        buckets.reserveCapacity(bucketCount)
        for _ in 0..<bucketCount { buckets.append(try CrisisDetector.Bucket(reading: &reader)) }
        self.init(
            brand: brand,
            buckets: buckets,
            history: try CrisisDetector.HourlyHistory(reading: &reader),
            spike: try AlertLifecycle(reading: &reader, configuration: lifecycle),
            campaign: try AlertLifecycle(reading: &reader, configuration: lifecycle),
            spikeDetected: try reader.optionalInt64(),
            campaignDetected: try reader.optionalInt64(),
            spikeOnset: try reader.optionalInt64(),
            campaignOnset: try reader.optionalInt64(),
            spikeAssessment: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try AuthenticityAssessment(reading: &reader)
            },
            campaignAssessment: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try AuthenticityAssessment(reading: &reader)
            },
            lastSeen: try reader.int64()
        )
    }
}

extension CrisisDetector.Bucket {
    func write(to writer: inout BinaryWriter) {
        writer.int(self.start)
        writer.int(self.negative)
        writer.int(self.scored)
        writer.optional(self.evidence) { $1.write(to: &$0) }
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        self.init(
            start: try reader.int64(),
            negative: try reader.counter(),
            scored: try reader.counter(),
            evidence: try reader.optional { (reader: inout BinaryReader) throws(BinaryDecodingError) in
                try CrisisEvidence(reading: &reader)
            }
        )
    }
}

extension CrisisDetector.HourlyHistory {
    /// Appends the history: first and latest hour, then the stored hours as ascending gaps (one byte each,
    /// mostly) with their counts.
    func write(to writer: inout BinaryWriter) {
        writer.int(self.firstHour)
        writer.int(self.latestHour)
        writer.varint(UInt64(self.entries.count))
        var previous = self.oldest
        for entry in self.entries {
            // Entries are ascending from `oldest`; should that ever break, the reader rejects the gap.
            writer.varint(UInt64(truncatingIfNeeded: entry.hour &- previous))
            writer.varint(UInt64(entry.negative))
            writer.varint(UInt64(entry.scored))
            previous = entry.hour
        }
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        // Hours are event-time milliseconds divided by an hour, so these bounds keep every sum in range.
        let limit = Int64.max / 3_600_000
        let firstHour = try reader.int64()
        let latestHour = try reader.int64()
        guard (-limit...limit).contains(firstHour), (firstHour...limit).contains(latestHour) else {
            throw reader.error("history hours \(firstHour)...\(latestHour)")
        }
        self.init(firstHour: firstHour)
        self.latestHour = latestHour
        let count = try reader.count()
        guard count <= Self.hours else { throw reader.error("\(count) history hours") }
        // Entries lie within the last `hours` hours, ascending, one per hour.
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        var previous = self.oldest
        for index in 0..<count {
            let gap = try reader.varint()
            guard gap < UInt64(Self.hours), index == 0 || gap > 0, previous + Int64(gap) <= latestHour else {
                throw reader.error("history hour out of order")
            }
            previous += Int64(gap)
            guard let negative = UInt32(exactly: try reader.varint()), let scored = UInt32(exactly: try reader.varint())
            else { throw reader.error("history count out of range") }
            entries.append(Entry(hour: previous, negative: negative, scored: scored))
        }
        self.entries = entries
    }
}
