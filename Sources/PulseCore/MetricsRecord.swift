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

    /// The JSON value, members in the documented order (``renderUTF8()`` as a string).
    public func render() -> String {
        String(decoding: self.renderUTF8(), as: UTF8.self)
    }

    /// The JSON value's UTF-8 bytes, members in the documented order. Written straight into one byte array:
    /// this runs once per entity and window, which on streams with many subjects is every few events, and the
    /// producer takes bytes (appending to a `String` piece by piece was 4 % of the daemon's CPU).
    public func renderUTF8() -> [UInt8] {
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

        var out = JSONBytes(capacity: 900)
        out.append(#"{"schema":"crowdpulse.metrics/v1","level":"#)
        out.append(quoted: self.key.level.rawValue)
        out.append(#","entity":"#)
        out.append(quoted: self.key.entity)
        out.append(#","window":{"start":""#)
        out.append(timestamp: self.windowStart)
        out.append(#"","end":""#)
        out.append(timestamp: self.windowEnd)
        out.append(#""},"is_final":"#)
        out.append(self.isFinal)
        out.append(#","revision":"#, self.revision)
        out.append(#","counts":{"like":"#, likes)
        out.append(#","comment":"#, comments)
        out.append(#","share":"#, shares)
        out.append(#","purchase":"#, purchases)
        out.append(#","view":"#, views)
        out.append(#"},"unique_users":"#, uniqueUsers)
        out.append(#","unique_users_approximate":"#)
        out.append(a.users.isApproximate)
        out.append(#","engagement":{"total":"#, total)
        out.append(#","weighted":"#)
        Self.number(weighted, into: &out)
        out.append(#","rate":"#)
        Self.ratio(Double(total), Double(views), into: &out)
        out.append(#"},"virality":{"shares_per_min":"#)
        Self.number(sharesPerMinute, into: &out)
        out.append(#","share_acceleration":"#)
        Self.number(sharesPerMinute - previousPerMinute, into: &out)
        out.append(#","amplification":"#)
        Self.ratio(Double(shares), Double(likes + comments + shares), into: &out)
        out.append(#","growth":"#)
        if let previous = self.previousShares {
            Self.ratio(Double(shares), Double(previous), into: &out)
        } else {
            out.append("null")
        }
        out.append(#","max_depth":"#, maxDepth)
        out.append(#","max_breadth":"#, maxBreadth)
        out.append(#","reshare_ratio":"#)
        Self.ratio(Double(a.sharesWithParent), Double(a.sharesWithoutParent), into: &out)
        out.append(#","potential_reach":"#, reach)
        out.append(#","top_amplifiers":["#)
        if !a.sharerFollowers.isEmpty {
            let top = a.sharerFollowers.map { ($0.key, $0.value.followers) }
                .sorted { ($0.1, $1.0) > ($1.1, $0.0) }.prefix(5)
            var first = true
            for (user, followers) in top {
                if !first { out.append(",") }
                first = false
                out.append(#"{"user_id":"#)
                out.append(quoted: user)
                out.append(#","followers":"#, followers)
                out.append("}")
            }
        }
        out.append(#"]},"sentiment":{"scored":"#, a.scored)
        out.append(#","mean":"#)
        Self.ratio(a.sentimentSum, Double(a.scored), into: &out)
        out.append(#","positive":"#, a.positive)
        out.append(#","neutral":"#, a.neutral)
        out.append(#","negative":"#, a.negative)
        out.append(#","negative_share":"#)
        Self.ratio(Double(a.negative), Double(a.scored), into: &out)
        out.append(#","net":"#)
        Self.ratio(Double(a.positive - a.negative), Double(a.scored), into: &out)
        out.append(#"},"revenue":{"purchases":"#, a.purchases)
        out.append(#","purchasers":"#, purchasers)
        out.append(#","amount":{"#)
        var firstAmount = true
        for (currency, micros) in a.amountMicros.sorted(by: { $0.key < $1.key }) {
            if !firstAmount { out.append(",") }
            firstAmount = false
            out.append(quoted: currency)
            out.append(":")
            Self.number(Double(micros) / 1e6, into: &out)
        }
        out.append(#"},"conversion":"#)
        Self.ratio(Double(purchasers), Double(uniqueUsers), into: &out)
        out.append("}}")
        return out.bytes
    }

    /// ``number(_:)`` appended to `out`: integral values without a fraction (and without a string), others with
    /// up to 6 decimals (rounded).
    static func number(_ value: Double, into out: inout JSONBytes) {
        guard value.isFinite else { return out.append("null") }
        let rounded = (value * 1_000_000).rounded() / 1_000_000
        if rounded == rounded.rounded(), abs(rounded) < 1e15 { return out.append(Int64(rounded)) }
        out.append(unescaped: String(rounded))
    }

    /// A JSON number: integral values without a fraction, others with up to 6 decimals (rounded).
    static func number(_ value: Double) -> String {
        var out = JSONBytes(capacity: 24)
        Self.number(value, into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// `numerator / denominator` as a ``number(_:)``, `null` when the denominator is not positive.
    static func ratio(_ numerator: Double, _ denominator: Double, into out: inout JSONBytes) {
        if denominator > 0 { Self.number(numerator / denominator, into: &out) } else { out.append("null") }
    }
}
