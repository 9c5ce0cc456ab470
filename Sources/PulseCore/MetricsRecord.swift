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

    /// `engagement.weighted`: the weighted sum of likes, comments, shares and purchases.
    public var weightedEngagement: Double {
        let a = self.aggregate
        let w = self.weights
        return w.like * Double(a.count(.like)) + w.comment * Double(a.count(.comment)) + w.share
            * Double(a.shares) + w.purchase * Double(a.count(.purchase))
    }

    /// `virality.shares_per_min`.
    public var sharesPerMinute: Double { Double(self.aggregate.shares) / self.windowMinutes }

    /// `sentiment.negative_share`; `nil` without scored comments.
    public var negativeShare: Double? {
        self.aggregate.scored > 0 ? Double(self.aggregate.negative) / Double(self.aggregate.scored) : nil
    }

    /// The JSON value, members in the documented order. Written straight into one string: this runs once
    /// per entity and window, which on streams with many subjects is every few events.
    public func render() -> String {
        let a = self.aggregate
        let likes = a.count(.like)
        let comments = a.count(.comment)
        let shares = a.shares
        let purchases = a.count(.purchase)
        let views = a.count(.view)
        let total = likes + comments + shares + purchases
        let weighted = self.weightedEngagement
        let sharesPerMinute = self.sharesPerMinute
        let previousPerMinute = Double(self.previousShares ?? 0) / self.windowMinutes
        let uniqueUsers = a.users.count
        let purchasers = a.purchasers.count
        var maxDepth = 0
        var maxBreadth = 0
        for (depth, count) in a.sharesByDepth {
            maxDepth = Swift.max(maxDepth, depth)
            maxBreadth = Swift.max(maxBreadth, count)
        }
        var reach: Int64 = 0
        for value in a.sharerFollowers.values { reach += value.followers }

        func ratio(_ numerator: Double, _ denominator: Double) -> String {
            denominator > 0 ? Self.number(numerator / denominator) : "null"
        }

        var out = ""
        out.reserveCapacity(900)
        out += #"{"schema":"crowdpulse.metrics/v1","level":"#
        out += JSONText.quote(self.key.level.rawValue)
        out += #","entity":"#
        out += JSONText.quote(self.key.entity)
        out += #","window":{"start":""#
        out += RFC3339.format(millis: self.windowStart)
        out += #"","end":""#
        out += RFC3339.format(millis: self.windowEnd)
        out += #""},"is_final":"#
        out += self.isFinal ? "true" : "false"
        out += #","revision":"#
        out += String(self.revision)
        out += #","counts":{"like":"#
        out += String(likes)
        out += #","comment":"#
        out += String(comments)
        out += #","share":"#
        out += String(shares)
        out += #","purchase":"#
        out += String(purchases)
        out += #","view":"#
        out += String(views)
        out += #"},"unique_users":"#
        out += String(uniqueUsers)
        out += #","unique_users_approximate":"#
        out += a.users.isApproximate ? "true" : "false"
        out += #","engagement":{"total":"#
        out += String(total)
        out += #","weighted":"#
        out += Self.number(weighted)
        out += #","rate":"#
        out += ratio(Double(total), Double(views))
        out += #"},"virality":{"shares_per_min":"#
        out += Self.number(sharesPerMinute)
        out += #","share_acceleration":"#
        out += Self.number(sharesPerMinute - previousPerMinute)
        out += #","amplification":"#
        out += ratio(Double(shares), Double(likes + comments + shares))
        out += #","growth":"#
        out += self.previousShares.map { ratio(Double(shares), Double($0)) } ?? "null"
        out += #","max_depth":"#
        out += String(maxDepth)
        out += #","max_breadth":"#
        out += String(maxBreadth)
        out += #","reshare_ratio":"#
        out += ratio(Double(a.sharesWithParent), Double(a.sharesWithoutParent))
        out += #","potential_reach":"#
        out += String(reach)
        out += #","top_amplifiers":["#
        if !a.sharerFollowers.isEmpty {
            let top = a.sharerFollowers.map { ($0.key, $0.value.followers) }
                .sorted { ($0.1, $1.0) > ($1.1, $0.0) }.prefix(5)
            var first = true
            for (user, followers) in top {
                if !first { out += "," }
                first = false
                out += #"{"user_id":"#
                out += JSONText.quote(user)
                out += #","followers":"#
                out += String(followers)
                out += "}"
            }
        }
        out += #"]},"sentiment":{"scored":"#
        out += String(a.scored)
        out += #","mean":"#
        out += ratio(a.sentimentSum, Double(a.scored))
        out += #","positive":"#
        out += String(a.positive)
        out += #","neutral":"#
        out += String(a.neutral)
        out += #","negative":"#
        out += String(a.negative)
        out += #","negative_share":"#
        out += ratio(Double(a.negative), Double(a.scored))
        out += #","net":"#
        out += ratio(Double(a.positive - a.negative), Double(a.scored))
        out += #"},"revenue":{"purchases":"#
        out += String(a.purchases)
        out += #","purchasers":"#
        out += String(purchasers)
        out += #","amount":{"#
        var firstAmount = true
        for (currency, micros) in a.amountMicros.sorted(by: { $0.key < $1.key }) {
            if !firstAmount { out += "," }
            firstAmount = false
            out += JSONText.quote(currency)
            out += ":"
            out += Self.number(Double(micros) / 1e6)
        }
        out += #"},"conversion":"#
        out += ratio(Double(purchasers), Double(uniqueUsers))
        out += "}}"
        return out
    }

    /// A JSON number: integral values without a fraction, others with up to 6 decimals (rounded).
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        let rounded = (value * 1_000_000).rounded() / 1_000_000
        if rounded == rounded.rounded(), abs(rounded) < 1e15 { return String(Int64(rounded)) }
        return String(rounded)
    }
}
