import PulseCore
import Synchronization

/// What the query API (`/v1/…`) and the dashboard show: the latest final metric record of each entity with
/// a short history of its key figures, and the active and recent alerts with their timelines.
///
/// Fed by the pipeline once per batch of outputs (a lock and a few dictionary updates per record, no
/// rendering: records arrive already rendered for Kafka). Bounded: at most `maxEntities` entities (the
/// least recently updated are dropped first) and `recentAlerts` resolved alerts.
public final class LiveView: Sendable {
    public struct Configuration: Sendable {
        public var maxEntities = 20_000
        /// Windows of history kept per entity (the sparklines).
        public var history = 30
        public var recentAlerts = 100
        /// Comments an entity needs in a window before it ranks by negative share.
        public var minScoredForShare = 5

        public init() {}
    }

    /// The figures charted per window.
    struct Point: Sendable {
        var windowStart: Int64
        var engagement: Double
        var virality: Double
        var negativeShare: Double?
        var scored: Int
    }

    struct Entity: Sendable {
        var brand: String?
        /// The latest record's JSON, as produced.
        var latest: [UInt8]
        var points: [Point]
        var touched: UInt64
    }

    struct Alert: Sendable {
        var record: String
        var level: EntityLevel
        var entity: String
        var isFiring: Bool
        /// (change, severity, event time, wall time) of every state change.
        var timeline: [(String, String, Int64, Int64)]
        var touched: UInt64
    }

    struct State: Sendable {
        var entities: [EntityKey: Entity] = [:]
        var alerts: [String: Alert] = [:]
        var sequence: UInt64 = 0
    }

    public let configuration: Configuration
    private let state = Mutex(State())

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Takes final metric records with their rendered JSON (the bytes produced to Kafka, not copied).
    public func record(_ records: [(record: MetricsRecord, rendered: [UInt8])]) {
        guard !records.isEmpty else { return }
        let limit = self.configuration.history
        self.state.withLock { state in
            for (record, rendered) in records where record.isFinal {
                state.sequence += 1
                let point = Point(
                    windowStart: record.windowStart,
                    engagement: record.weightedEngagement,
                    virality: record.sharesPerMinute,
                    negativeShare: record.negativeShare,
                    scored: record.aggregate.scored
                )
                var entity =
                    state.entities[record.key]
                    ?? Entity(brand: nil, latest: rendered, points: [], touched: 0)
                if let brand = record.aggregate.brand { entity.brand = brand }
                if let last = entity.points.last, last.windowStart > record.windowStart {
                    // A late revision of an older window: keep the newest as `latest`, fix the point.
                    if let index = entity.points.firstIndex(where: { $0.windowStart == record.windowStart }) {
                        entity.points[index] = point
                    }
                } else {
                    entity.latest = rendered
                    if entity.points.last?.windowStart == record.windowStart {
                        entity.points[entity.points.count - 1] = point
                    } else {
                        entity.points.append(point)
                        if entity.points.count > limit { entity.points.removeFirst(entity.points.count - limit) }
                    }
                }
                entity.touched = state.sequence
                state.entities[record.key] = entity
            }
            let cap = self.configuration.maxEntities
            if state.entities.count > cap + cap / 10 {
                // Drop the least recently updated, in one sweep, down to the cap.
                let keep = state.entities.sorted { $0.value.touched > $1.value.touched }.prefix(cap)
                state.entities = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
        }
    }

    /// Takes an alert state change with its rendered record.
    public func alert(_ record: AlertRecord, rendered: String, emittedAt: Int64) {
        let event = record.event
        self.state.withLock { state in
            state.sequence += 1
            var alert =
                state.alerts[record.fingerprint]
                ?? Alert(
                    record: rendered,
                    level: event.level,
                    entity: event.entity,
                    isFiring: true,
                    timeline: [],
                    touched: 0
                )
            if event.change == .firing && !alert.isFiring { alert.timeline = [] }  // a new excursion
            alert.record = rendered
            alert.isFiring = event.change != .resolved
            alert.timeline.append((event.change.rawValue, event.severity.rawValue, event.at, emittedAt))
            alert.touched = state.sequence
            state.alerts[record.fingerprint] = alert
            let resolved = state.alerts.filter { !$0.value.isFiring }
            if resolved.count > self.configuration.recentAlerts {
                for (key, _) in resolved.sorted(by: { $0.value.touched < $1.value.touched })
                    .prefix(resolved.count - self.configuration.recentAlerts)
                {
                    state.alerts[key] = nil
                }
            }
        }
    }

    public var entityCount: Int { self.state.withLock { $0.entities.count } }

    // MARK: - Queries (JSON)

    private static func history(_ points: [Point]) -> String {
        "["
            + points.map { point in
                JSONText.object([
                    ("window_start", JSONText.quote(RFC3339.format(millis: point.windowStart))),
                    ("engagement", Self.number(point.engagement)),
                    ("virality", Self.number(point.virality)),
                    ("negative_share", point.negativeShare.map(Self.number) ?? "null"),
                    ("scored", String(point.scored)),
                ])
            }.joined(separator: ",") + "]"
    }

    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        let rounded = (value * 10_000).rounded() / 10_000
        return rounded == rounded.rounded() && abs(rounded) < 1e15 ? String(Int64(rounded)) : String(rounded)
    }

    private static func alertJSON(_ alert: Alert) -> String {
        let timeline = alert.timeline.map { change, severity, at, emitted in
            JSONText.object([
                ("change", JSONText.quote(change)), ("severity", JSONText.quote(severity)),
                ("at", JSONText.quote(RFC3339.format(millis: at))),
                ("emitted_at", JSONText.quote(RFC3339.format(millis: emitted))),
            ])
        }
        return JSONText.object([
            ("alert", alert.record), ("timeline", "[" + timeline.joined(separator: ",") + "]"),
        ])
    }

    /// `/v1/entities/{level}/{id}`: the latest record, the history and the entity's alerts; `nil` if unknown.
    public func entity(level: EntityLevel, id: String) -> String? {
        self.state.withLock { state in
            guard let entity = state.entities[EntityKey(level, id)] else { return nil }
            let alerts = state.alerts.values.filter { $0.level == level && $0.entity == id }
                .sorted { $0.touched > $1.touched }.map(Self.alertJSON)
            return JSONText.object([
                ("level", JSONText.quote(level.rawValue)), ("entity", JSONText.quote(id)),
                ("brand", entity.brand.map(JSONText.quote) ?? "null"),
                ("latest", String(decoding: entity.latest, as: UTF8.self)),
                ("history", Self.history(entity.points)), ("alerts", "[" + alerts.joined(separator: ",") + "]"),
            ])
        }
    }

    /// `/v1/alerts`: firing alerts (most recent change first), then recently resolved ones.
    public func alerts() -> String {
        self.state.withLock { state in
            let sorted = state.alerts.values.sorted { $0.touched > $1.touched }
            let active = sorted.filter(\.isFiring).map { alert -> String in
                let points = state.entities[EntityKey(alert.level, alert.entity)]?.points ?? []
                return JSONText.object([
                    ("alert", Self.alertJSON(alert)), ("history", Self.history(points)),
                ])
            }
            let recent = sorted.filter { !$0.isFiring }.map { alert -> String in
                let points = state.entities[EntityKey(alert.level, alert.entity)]?.points ?? []
                return JSONText.object([
                    ("alert", Self.alertJSON(alert)), ("history", Self.history(points)),
                ])
            }
            return JSONText.object([
                ("active", "[" + active.joined(separator: ",") + "]"),
                ("recent", "[" + recent.joined(separator: ",") + "]"),
            ])
        }
    }

    /// The metrics `/v1/top` ranks by.
    public enum Metric: String, Sendable, CaseIterable {
        case engagement, virality
        case negativeShare = "negative_share"
    }

    /// `/v1/top?metric=…&level=…&limit=…`: entities by their latest window's value.
    public func top(metric: Metric, level: EntityLevel, limit: Int) -> String {
        let minScored = self.configuration.minScoredForShare
        return self.state.withLock { state in
            var ranked: [(key: EntityKey, value: Double, entity: Entity)] = []
            for (key, entity) in state.entities where key.level == level {
                guard let point = entity.points.last else { continue }
                let value: Double?
                switch metric {
                case .engagement: value = point.engagement
                case .virality: value = point.virality
                case .negativeShare: value = point.scored >= minScored ? point.negativeShare : nil
                }
                if let value { ranked.append((key, value, entity)) }
            }
            ranked.sort { ($0.value, $1.key.entity) > ($1.value, $0.key.entity) }
            let rows = ranked.prefix(max(0, limit)).map { row in
                JSONText.object([
                    ("entity", JSONText.quote(row.key.entity)),
                    ("brand", row.entity.brand.map(JSONText.quote) ?? "null"),
                    ("value", Self.number(row.value)),
                    ("window_start", JSONText.quote(RFC3339.format(millis: row.entity.points.last!.windowStart))),
                    ("history", Self.history(row.entity.points)),
                ])
            }
            return JSONText.object([
                ("metric", JSONText.quote(metric.rawValue)), ("level", JSONText.quote(level.rawValue)),
                ("entities", "[" + rows.joined(separator: ",") + "]"),
            ])
        }
    }
}
