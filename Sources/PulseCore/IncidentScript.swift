/// Scripted incidents on top of the synthetic background stream (``SyntheticEvents``), for `crowdpulse demo`
/// and `crowdpulse generate --scenario crises`: an organic crisis on one brand and a coordinated attack on
/// another, so that the crisis detector has something real to find and tell apart.
///
/// - **Organic crisis**: customers of the brand (they bought from it in the script's first minute; their
///   accounts are two years old) complain about one post in several languages, each in their own words,
///   at a steady rate, and some of them share the complaint.
/// - **Coordinated attack**: accounts created three days before post one template (with small
///   variations) on one post, in synchronised bursts every ten seconds.
///
/// Deterministic: ``events(from:to:)`` returns the events due in an interval of time since the script's
/// origin, so any tick size gives the same stream.
public struct IncidentScript: Sendable {
    public enum Kind: String, Sendable {
        case organicCrisis = "organic_crisis"
        case coordinatedAttack = "coordinated_attack"
    }

    public struct Incident: Sendable, Equatable {
        public var kind: Kind
        public var brand: String
        public var subject: String
        /// Offset from the script's origin.
        public var startMillis: Int64
        public var durationMillis: Int64
        public var perSecond: Int

        public init(
            kind: Kind,
            brand: String,
            subject: String,
            startMillis: Int64,
            durationMillis: Int64,
            perSecond: Int
        ) {
            self.kind = kind
            self.brand = brand
            self.subject = subject
            self.startMillis = startMillis
            self.durationMillis = durationMillis
            self.perSecond = perSecond
        }
    }

    public let incidents: [Incident]
    /// Epoch milliseconds of offset 0.
    public let origin: Int64

    public init(incidents: [Incident], origin: Int64) {
        self.incidents = incidents
        self.origin = origin
    }

    /// The demo's script: after a minute, an organic crisis on `brand-7` (post-7) for three minutes; after
    /// two, a coordinated attack on `brand-13` (post-13) for two and a half. With `brands` brands in the
    /// background stream, post-N belongs to brand-(N mod brands).
    public static func crises(origin: Int64, brands: Int = 200, scale: Double = 1) -> IncidentScript {
        let crisisBrand = 7 % max(1, brands)
        let attackBrand = 13 % max(1, brands)
        return IncidentScript(
            incidents: [
                Incident(
                    kind: .organicCrisis,
                    brand: "brand-\(crisisBrand)",
                    subject: "post-7",
                    startMillis: 60_000,
                    durationMillis: 180_000,
                    perSecond: max(1, Int(4 * scale))
                ),
                Incident(
                    kind: .coordinatedAttack,
                    brand: "brand-\(attackBrand)",
                    subject: "post-13",
                    startMillis: 120_000,
                    durationMillis: 150_000,
                    perSecond: max(1, Int(5 * scale))
                ),
            ],
            origin: origin
        )
    }

    static let complaints: [(lang: String, text: String)] = [
        ("en", "The new update deleted all my saved orders, this is unacceptable"),
        ("en", "Three days without service and support keeps closing my ticket"),
        ("en", "I paid for express shipping and nothing arrived, I want a refund"),
        ("es", "Llevo tres días sin servicio y nadie me responde, qué vergüenza"),
        ("es", "La actualización borró mis pedidos, quiero mi dinero de vuelta"),
        ("de", "Seit dem Update funktioniert gar nichts mehr, total enttäuscht"),
        ("fr", "Service client injoignable depuis trois jours, c'est honteux"),
        ("pt", "Paguei e não recebi nada, péssimo atendimento"),
        ("ja", "アップデートで注文履歴が消えました。最悪です。"),
        ("ko", "업데이트 이후로 앱이 계속 멈춰요. 정말 실망이에요."),
        ("id", "Sudah tiga hari tidak bisa dipakai, sangat mengecewakan"),
    ]

    /// Real customers say it their own way: an opener and a closer around the complaint.
    static let openers = [
        "Honestly,", "Wow.", "Seriously?", "Day three:", "Ugh,", "Customer for six years here and", "", "PSA:",
        "Not happy:", "Again!", "@support",
    ]
    static let closers = [
        "fix it now", "I'm done with you", "answer me", "refund please", "never again", "so disappointed",
        "unbelievable", "what a mess", "I'll take my business elsewhere", "",
    ]

    static let details = [
        "", "and the chat bot just loops", "my whole team is affected", "second time this month",
        "on my birthday of all days", "after I paid extra", "the FAQ link is dead too", "my kids' photos are gone",
        "nobody on the phone either", "",
    ]

    static let template = "Do NOT buy from %BRAND%, they are scammers and stole my money!!! #boycott%BRAND%"

    private static func customer(_ index: Int, of brand: String) -> String { "\(brand)-customer-\(index % 150)" }

    /// The incident events with offsets in `[from, to)` (milliseconds since the origin), in time order.
    public func events(from: Int64, to: Int64) -> [SyntheticEvents.Event] {
        guard to > from else { return [] }
        var due: [(offset: Int64, event: SyntheticEvents.Event)] = []
        for incident in self.incidents {
            switch incident.kind {
            case .organicCrisis:
                // The future complainers buy first, in the first 50 seconds.
                for index in 0..<150 {
                    let offset = Int64(index) * 333
                    guard offset >= from && offset < to else { continue }
                    due.append(
                        (offset, self.purchase(at: offset, by: Self.customer(index, of: incident.brand), incident))
                    )
                }
                let spacing = Int64(1000 / incident.perSecond)
                let count = Int(incident.durationMillis / spacing)
                for index in 0..<count {
                    let offset = incident.startMillis + Int64(index) * spacing
                    guard offset >= from && offset < to else { continue }
                    due.append((offset, self.complaint(index, at: offset, incident)))
                    if index % 5 == 4 { due.append((offset + 1, self.share(index, at: offset + 1, incident))) }
                }
            case .coordinatedAttack:
                // Bursts every ten seconds: a burst's comments within a second of each other.
                let perBurst = incident.perSecond * 10
                let bursts = Int(incident.durationMillis / 10_000)
                for burst in 0..<bursts {
                    for member in 0..<perBurst {
                        let offset = incident.startMillis + Int64(burst) * 10_000 + Int64(member * 1000 / perBurst)
                        guard offset >= from && offset < to else { continue }
                        due.append((offset, self.attack(burst * perBurst + member, at: offset, incident)))
                    }
                }
            }
        }
        return due.sorted { $0.offset < $1.offset }.map(\.event)
    }

    /// Event ids follow from the incident, the kind of event and its index, so that they do not depend on
    /// how the script's time is cut into ticks.
    private func eventID(_ incident: Incident, _ kind: String, _ index: Int) -> String {
        "inc-\(self.origin)-\(incident.brand)-\(incident.kind == .organicCrisis ? "c" : "a")\(kind)\(index)"
    }

    private static func iso(_ millis: Int64) -> String { RFC3339.format(millis: millis) }

    private func purchase(at offset: Int64, by user: String, _ incident: Incident) -> SyntheticEvents.Event {
        let id = self.eventID(incident, "p", Int(offset / 333))
        let json =
            #"{"event_id":"\#(id)","type":"purchase","occurred_at":\#(self.origin + offset),"subject_id":"\#(incident.subject)","#
            + #""brand":"\#(incident.brand)","user_id":"\#(user)","amount":49.90,"currency":"EUR","#
            + #""user":{"created_at":"\#(Self.iso(self.origin - 730 * 86_400_000))"}}"#
        return SyntheticEvents.Event(key: incident.subject, json: json, type: "purchase")
    }

    private func complaint(_ index: Int, at offset: Int64, _ incident: Incident) -> SyntheticEvents.Event {
        let id = self.eventID(incident, "m", index)
        let (lang, complaint) = Self.complaints[(index * 7 + index / 3) % Self.complaints.count]
        let opener = Self.openers[(index / 2 + index * 5) % Self.openers.count]
        let closer = Self.closers[(index * 3 + index / 7) % Self.closers.count]
        let detail = Self.details[(index * 11 + index / 5) % Self.details.count]
        let order = index % 3 == 0 ? "order #\(40_000 + (index * 7_919) % 50_000)" : ""
        let text = [opener, complaint, detail, order, closer].filter { !$0.isEmpty }.joined(separator: " ")
        let json =
            #"{"event_id":"\#(id)","type":"comment","occurred_at":\#(self.origin + offset),"subject_id":"\#(incident.subject)","#
            + #""brand":"\#(incident.brand)","user_id":"\#(Self.customer(index, of: incident.brand))","#
            + #""text":"\#(text)","lang":"\#(lang)","#
            + #""user":{"created_at":"\#(Self.iso(self.origin - 730 * 86_400_000))","followers":\#(50 + index % 900)}}"#
        return SyntheticEvents.Event(key: incident.subject, json: json, type: "comment")
    }

    private func share(_ index: Int, at offset: Int64, _ incident: Incident) -> SyntheticEvents.Event {
        let id = self.eventID(incident, "s", index)
        let json =
            #"{"event_id":"\#(id)","type":"share","occurred_at":\#(self.origin + offset),"subject_id":"\#(incident.subject)","#
            + #""brand":"\#(incident.brand)","user_id":"\#(Self.customer(index + 1, of: incident.brand))","#
            + #""user":{"created_at":"\#(Self.iso(self.origin - 730 * 86_400_000))","followers":\#(200 + index % 5000)}}"#
        return SyntheticEvents.Event(key: incident.subject, json: json, type: "share")
    }

    private func attack(_ index: Int, at offset: Int64, _ incident: Incident) -> SyntheticEvents.Event {
        let id = self.eventID(incident, "m", index)
        let text = Self.template.replacingBrand(incident.brand) + String(repeating: "!", count: index % 3)
        let json =
            #"{"event_id":"\#(id)","type":"comment","occurred_at":\#(self.origin + offset),"subject_id":"\#(incident.subject)","#
            + #""brand":"\#(incident.brand)","user_id":"\#(incident.brand)-acct-\#(index % 120)","#
            + #""text":"\#(text)","lang":"en","#
            + #""user":{"created_at":"\#(Self.iso(self.origin - 3 * 86_400_000))","followers":\#(index % 7)}}"#
        return SyntheticEvents.Event(key: incident.subject, json: json, type: "comment")
    }
}

extension String {
    fileprivate func replacingBrand(_ brand: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: "%BRAND%") {
            result += rest[..<range.lowerBound]
            result += brand
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
