/// The languages the built-in scorer has lexicons for, with their BCP 47 tags.
public enum SentimentLanguage: String, Sendable, CaseIterable, Codable {
    case english = "en"
    case spanish = "es"
    case portuguese = "pt"
    case french = "fr"
    case german = "de"
    case indonesian = "id"
    case vietnamese = "vi"
    case latvian = "lv"
    case chineseSimplified = "zh-Hans"
    case chineseTraditional = "zh-Hant"
    case japanese = "ja"
    case korean = "ko"

    /// Latin-script languages, told apart by stop words and diacritics; `bit` indexes the masks of the
    /// merged identification table.
    static let latin: [SentimentLanguage] = [
        .english, .spanish, .portuguese, .french, .german, .indonesian, .vietnamese, .latvian,
    ]

    var latinBit: Int? { Self.latin.firstIndex(of: self) }

    var isChinese: Bool { self == .chineseSimplified || self == .chineseTraditional }

    /// Maps an event's `lang` tag (any case, with region or script subtags) to a supported language.
    /// `zh` alone says nothing about the script, so it maps to `nil` and identification decides.
    /// Unsupported languages map to `nil` as well.
    public init?(tag: String) {
        var lowered = tag.lowercased()
        lowered = String(lowered.map { $0 == "_" ? "-" : $0 })
        let parts = lowered.split(separator: "-")
        guard let primary = parts.first else { return nil }
        switch primary {
        case "en": self = .english
        case "es": self = .spanish
        case "pt": self = .portuguese
        case "fr": self = .french
        case "de": self = .german
        case "id", "in": self = .indonesian
        case "vi": self = .vietnamese
        case "lv": self = .latvian
        case "ja": self = .japanese
        case "ko": self = .korean
        case "zh", "cmn", "yue":
            let rest = Set(parts.dropFirst())
            if !rest.isDisjoint(with: ["hant", "tw", "hk", "mo"]) || primary == "yue" {
                self = .chineseTraditional
            } else if !rest.isDisjoint(with: ["hans", "cn", "sg", "my"]) {
                self = .chineseSimplified
            } else {
                return nil
            }
        default: return nil
        }
    }
}

/// What the scorer found for one text.
public struct SentimentAnalysis: Sendable, Equatable {
    /// In [-1, 1].
    public var score: Double
    public var label: SentimentLabel
    /// The language whose lexicon was used: the given tag when supported, else the identified one;
    /// `nil` when the text has no letters at all (emoji only, digits), reported as `und`.
    public var language: SentimentLanguage?

    /// BCP 47 tag of `language`, `und` when undetermined.
    public var languageTag: String { self.language?.rawValue ?? "und" }
}
