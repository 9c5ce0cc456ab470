/// Engagement weights (`metrics.weights.*`): `weighted = wL·L + wC·C + wS·S + wP·P`.
public struct EngagementWeights: Sendable, Equatable {
    public var like: Double
    public var comment: Double
    public var share: Double
    public var purchase: Double

    public init(like: Double = 1, comment: Double = 2, share: Double = 3, purchase: Double = 5) {
        self.like = like
        self.comment = comment
        self.share = share
        self.purchase = purchase
    }
}

/// One `crowdpulse.metrics/v1` record: the metrics of one entity in one window (formulas in
/// `docs/metrics.md`).
public struct MetricsRecord: Sendable, Equatable {
    public var key: EntityKey
    public var windowStart: Int64
    public var windowEnd: Int64
    public var isFinal: Bool
    public var revision: Int
    public var aggregate: WindowAggregate
    /// Shares of the entity's previous window (`nil`: no record there, which counts as 0).
    public var previousShares: Int?
    public var weights: EngagementWeights

    public init(
        key: EntityKey,
        windowStart: Int64,
        windowEnd: Int64,
        isFinal: Bool,
        revision: Int,
        aggregate: WindowAggregate,
        previousShares: Int?,
        weights: EngagementWeights = EngagementWeights()
    ) {
        self.key = key
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.isFinal = isFinal
        self.revision = revision
        self.aggregate = aggregate
        self.previousShares = previousShares
        self.weights = weights
    }

    /// `<level>|<entity>|<window start, RFC 3339 UTC>`: a compacted topic keeps the latest revision.
    public var recordKey: String {
        "\(self.key.level.rawValue)|\(self.key.entity)|\(RFC3339.format(millis: self.windowStart))"
    }

    var windowMinutes: Double { Double(self.windowEnd - self.windowStart) / 60_000 }

    /// The JSON value, members in the documented order.
    public func render() -> String {
        let a = self.aggregate
        let likes = a.count(.like)
        let comments = a.count(.comment)
        let shares = a.shares
        let purchases = a.count(.purchase)
        let views = a.count(.view)
        let total = likes + comments + shares + purchases
        let w = self.weights
        let weighted =
            w.like * Double(likes) + w.comment * Double(comments) + w.share * Double(shares) + w.purchase
            * Double(purchases)
        let sharesPerMinute = Double(shares) / self.windowMinutes
        let previousPerMinute = Double(self.previousShares ?? 0) / self.windowMinutes
        let uniqueUsers = a.users.count
        let maxDepth = a.sharesByDepth.keys.max() ?? 0
        let maxBreadth = a.sharesByDepth.values.max() ?? 0
        let reach = a.sharerFollowers.values.reduce(0) { $0 + $1.followers }
        let top = a.sharerFollowers.map { ($0.key, $0.value.followers) }
            .sorted { ($0.1, $1.0) > ($1.1, $0.0) }.prefix(5)

        func ratio(_ numerator: Double, _ denominator: Double) -> String {
            denominator > 0 ? Self.number(numerator / denominator) : "null"
        }
        func object(_ members: [(String, String)]) -> String { JSONText.object(members) }

        let amounts = a.amounts.sorted { $0.key < $1.key }.map { ($0.key, Self.number($0.value)) }
        let topAmplifiers =
            "["
            + top.map { object([("user_id", JSONText.quote($0.0)), ("followers", String($0.1))]) }
            .joined(separator: ",") + "]"
        return object([
            ("schema", "\"crowdpulse.metrics/v1\""),
            ("level", JSONText.quote(self.key.level.rawValue)),
            ("entity", JSONText.quote(self.key.entity)),
            (
                "window",
                object([
                    ("start", JSONText.quote(RFC3339.format(millis: self.windowStart))),
                    ("end", JSONText.quote(RFC3339.format(millis: self.windowEnd))),
                ])
            ),
            ("is_final", self.isFinal ? "true" : "false"),
            ("revision", String(self.revision)),
            (
                "counts",
                object([
                    ("like", String(likes)), ("comment", String(comments)), ("share", String(shares)),
                    ("purchase", String(purchases)), ("view", String(views)),
                ])
            ),
            ("unique_users", String(uniqueUsers)),
            ("unique_users_approximate", a.users.isApproximate ? "true" : "false"),
            (
                "engagement",
                object([
                    ("total", String(total)), ("weighted", Self.number(weighted)),
                    ("rate", ratio(Double(total), Double(views))),
                ])
            ),
            (
                "virality",
                object([
                    ("shares_per_min", Self.number(sharesPerMinute)),
                    ("share_acceleration", Self.number(sharesPerMinute - previousPerMinute)),
                    ("amplification", ratio(Double(shares), Double(likes + comments + shares))),
                    ("growth", self.previousShares.map { ratio(Double(shares), Double($0)) } ?? "null"),
                    ("max_depth", String(maxDepth)),
                    ("max_breadth", String(maxBreadth)),
                    ("reshare_ratio", ratio(Double(a.sharesWithParent), Double(a.sharesWithoutParent))),
                    ("potential_reach", String(reach)),
                    ("top_amplifiers", topAmplifiers),
                ])
            ),
            (
                "sentiment",
                object([
                    ("scored", String(a.scored)),
                    ("mean", ratio(a.sentimentSum, Double(a.scored))),
                    ("positive", String(a.positive)),
                    ("neutral", String(a.neutral)),
                    ("negative", String(a.negative)),
                    ("negative_share", ratio(Double(a.negative), Double(a.scored))),
                    ("net", ratio(Double(a.positive - a.negative), Double(a.scored))),
                ])
            ),
            (
                "revenue",
                object([
                    ("purchases", String(a.purchases)),
                    ("purchasers", String(a.purchasers.count)),
                    ("amount", object(amounts)),
                    ("conversion", ratio(Double(a.purchasers.count), Double(uniqueUsers))),
                ])
            ),
        ])
    }

    /// A JSON number: integral values without a fraction, others with up to 6 decimals (rounded).
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        let rounded = (value * 1_000_000).rounded() / 1_000_000
        if rounded == rounded.rounded(), abs(rounded) < 1e15 { return String(Int64(rounded)) }
        return String(rounded)
    }
}
