/// One interaction event, as the v1 contract defines it (`schemas/event.v1.schema.json`).
///
/// Strings are decoded (escapes resolved); times are epoch milliseconds UTC. Optional fields that were
/// absent, `null`, or do not apply to the event's type are `nil`.
public struct Event: Sendable, Equatable {
    /// The interaction type.
    public enum Kind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
        case like, comment, share, purchase, view

        public var description: String {
            switch self {
            case .like: return "like"
            case .comment: return "comment"
            case .share: return "share"
            case .purchase: return "purchase"
            case .view: return "view"
            }
        }

        public init?(name: String) {
            guard let kind = Self.allCases.first(where: { $0.description == name }) else { return nil }
            self = kind
        }
    }

    /// Authenticity signals about the actor, when the platform sends them.
    public struct User: Sendable, Equatable {
        /// When the account was created (epoch ms).
        public var createdAt: Int64?
        public var followers: Int64?
        public var verified: Bool?

        public init(createdAt: Int64? = nil, followers: Int64? = nil, verified: Bool? = nil) {
            self.createdAt = createdAt
            self.followers = followers
            self.verified = verified
        }
    }

    public var eventID: String
    public var kind: Kind
    /// Event time, epoch milliseconds UTC.
    public var occurredAt: Int64
    public var subjectID: String
    public var userID: String
    public var brand: String?
    public var platform: String?
    /// The comment text (`comment` only).
    public var text: String?
    /// BCP 47 language tag of `text` (`comment` only).
    public var lang: String?
    /// An upstream sentiment score in [-1, 1] (`comment` only), used instead of ours.
    public var sentiment: Double?
    /// The share this one re-shared (`share` only).
    public var parentEventID: String?
    /// Purchase amount (`purchase` only; required there).
    public var amount: Double?
    /// ISO 4217 code (`purchase` only).
    public var currency: String?
    public var user: User?

    public init(
        eventID: String,
        kind: Kind,
        occurredAt: Int64,
        subjectID: String,
        userID: String,
        brand: String? = nil,
        platform: String? = nil,
        text: String? = nil,
        lang: String? = nil,
        sentiment: Double? = nil,
        parentEventID: String? = nil,
        amount: Double? = nil,
        currency: String? = nil,
        user: User? = nil
    ) {
        self.eventID = eventID
        self.kind = kind
        self.occurredAt = occurredAt
        self.subjectID = subjectID
        self.userID = userID
        self.brand = brand
        self.platform = platform
        self.text = text
        self.lang = lang
        self.sentiment = sentiment
        self.parentEventID = parentEventID
        self.amount = amount
        self.currency = currency
        self.user = user
    }
}

/// Why a record was rejected: a fixed code (the `crowdpulse.reason` dead-letter header and the metric
/// dimension) and a human-readable detail.
public struct Rejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// Reason codes, in the order the checks run: the first that fails is reported.
    public enum Reason: String, Sendable, CaseIterable, Comparable {
        case oversize
        case invalidUTF8 = "invalid_utf8"
        case malformedJSON = "malformed_json"
        case badType = "bad_type"
        case missingField = "missing_field"
        case unknownType = "unknown_type"
        case badValue = "bad_value"
        case badTimestamp = "bad_timestamp"
        case futureTimestamp = "future_timestamp"

        private var rank: Int { Self.allCases.firstIndex(of: self)! }
        public static func < (lhs: Reason, rhs: Reason) -> Bool { lhs.rank < rhs.rank }
    }

    public var reason: Reason
    public var detail: String

    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(self.reason.rawValue): \(self.detail)" }
}
