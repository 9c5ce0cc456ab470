/// A deterministic generator of v1 interaction events, for the demo, benchmarks and tests.
///
/// The mix follows the standard benchmark stream: 60% likes, 20% comments (in several languages, about a
/// quarter of them negative), 15% shares (a third re-sharing an earlier share), 5% purchases. The same seed
/// gives the same events; time comes in from the caller, so the generator reads no clock.
public struct SyntheticEvents: Sendable {
    /// Generator settings.
    public struct Configuration: Sendable, Equatable {
        public var subjects: Int
        public var brands: Int
        public var users: Int
        public var seed: UInt64

        public init(subjects: Int = 10_000, brands: Int = 200, users: Int = 100_000, seed: UInt64 = 42) {
            precondition(subjects > 0 && brands > 0 && users > 0, "subjects, brands and users must be positive")
            self.subjects = subjects
            self.brands = brands
            self.users = users
            self.seed = seed
        }
    }

    /// One generated event: its key (the subject) and its JSON bytes.
    public struct Event: Sendable, Equatable {
        public var key: String
        public var json: String
        public var type: String
    }

    public let configuration: Configuration
    private var random: SplitMix64
    private var sequence: UInt64 = 0
    private var recentShares: [String] = []

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.random = SplitMix64(seed: configuration.seed)
    }

    /// The comment texts the generator draws from, one or more per supported language.
    public static let comments: [(lang: String, text: String)] = [
        ("en", "Love this, the quality is amazing and shipping was fast!"),
        ("en", "Worst purchase ever. Broken on arrival and support ignores me."),
        ("en", "Not bad, but the colour is different from the photos."),
        ("es", "Me encanta, llegó rápido y funciona perfecto."),
        ("es", "Muy decepcionado, el producto llegó roto."),
        ("pt", "Produto excelente, recomendo a todos!"),
        ("fr", "Service client horrible, je ne recommande pas."),
        ("de", "Sehr gute Qualität, gerne wieder."),
        ("id", "Barangnya bagus, pengiriman cepat, terima kasih!"),
        ("vi", "Sản phẩm rất tệ, tôi rất thất vọng."),
        ("lv", "Ļoti labs produkts, iesaku visiem!"),
        ("zh", "质量很好，非常满意！"),
        ("zh-Hant", "服務太差了，再也不買了。"),
        ("ja", "とても良い商品でした。また買います。"),
        ("ko", "배송이 너무 늦고 포장이 엉망이에요."),
    ]

    /// The next event, stamped with `occurredAtMillis` (epoch milliseconds).
    public mutating func next(occurredAtMillis: Int64) -> Event {
        self.sequence += 1
        let subjectIndex = Int(self.random.next() % UInt64(self.configuration.subjects))
        let subject = "post-\(subjectIndex)"
        let brand = "brand-\(subjectIndex % self.configuration.brands)"
        let user = "u-\(self.random.next() % UInt64(self.configuration.users))"
        let eventID = "ev-\(self.configuration.seed)-\(self.sequence)"
        let roll = self.random.next() % 100
        let followers = self.random.next() % 50_000
        let platform = ["tiktok", "web", "instagram", "youtube"][Int(self.random.next() % 4)]
        var fields =
            #"{"event_id":"\#(eventID)","occurred_at":\#(occurredAtMillis),"subject_id":"\#(subject)","#
            + #""brand":"\#(brand)","user_id":"\#(user)","platform":"\#(platform)","#
        let type: String
        switch roll {
        case 0..<60:
            type = "like"
        case 60..<80:
            type = "comment"
            let comment = Self.comments[Int(self.random.next() % UInt64(Self.comments.count))]
            fields += #""text":"\#(comment.text)","lang":"\#(comment.lang)","#
        case 80..<95:
            type = "share"
            if !self.recentShares.isEmpty, self.random.next() % 3 == 0 {
                let parent = self.recentShares[Int(self.random.next() % UInt64(self.recentShares.count))]
                fields += #""parent_event_id":"\#(parent)","#
            }
            if self.recentShares.count < 1024 {
                self.recentShares.append(eventID)
            } else {
                self.recentShares[Int(self.sequence % 1024)] = eventID
            }
        default:
            type = "purchase"
            let cents = 500 + self.random.next() % 20_000
            fields += #""amount":\#(cents / 100).\#(cents % 100 < 10 ? "0" : "")\#(cents % 100),"currency":"USD","#
        }
        fields +=
            #""type":"\#(type)","user":{"created_at":"2024-03-01T12:00:00Z","followers":\#(followers),"#
            + #""verified":\#(followers > 40_000 ? "true" : "false")}}"#
        return Event(key: subject, json: fields, type: type)
    }
}

/// SplitMix64: a small, fast, well-distributed pseudo-random generator with a 64-bit state.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        self.state = seed
    }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
