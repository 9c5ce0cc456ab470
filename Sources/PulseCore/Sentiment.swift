/// Scores a comment's text in [-1, 1]. The multilingual scorer is its own piece of work; the pipeline
/// only needs this protocol.
public protocol SentimentScorer: Sendable {
    /// A score in [-1, 1] for `text` (language `lang` when known).
    func score(_ text: String, lang: String?) -> Double
}

/// Sentiment labels by VADER's ±0.05 thresholds, inclusive.
public enum SentimentLabel: String, Sendable {
    case negative, neutral, positive

    public init(score: Double) {
        if score >= 0.05 {
            self = .positive
        } else if score <= -0.05 {
            self = .negative
        } else {
            self = .neutral
        }
    }
}

/// A stand-in until the multilingual scorer lands: a tiny hand-written word list, mostly English, with
/// one-word negation. It exists so that the metric pipeline has scores to aggregate; it is not meant to
/// be accurate, and events that carry their own `sentiment` never use it.
public struct PlaceholderLexiconScorer: SentimentScorer {
    private static let positive: Set<String> = [
        "love", "great", "amazing", "excellent", "good", "perfect", "recommend", "fast", "happy", "best",
        "encanta", "excelente", "bagus", "gute", "labs", "好", "満足", "良い",
    ]
    private static let negative: Set<String> = [
        "hate", "worst", "terrible", "horrible", "bad", "broken", "awful", "ignores", "disappointed", "refund",
        "scam", "decepcionado", "roto", "tệ", "thất", "差", "엉망", "늦고",
    ]
    private static let negators: Set<String> = ["not", "no", "never", "don't", "isn't", "ne", "nicht", "không"]

    private static let cjkPositive: [[UInt8]] = positive.filter { $0.unicodeScalars.contains { $0.value > 0x2E80 } }
        .map { Array($0.utf8) }
    private static let cjkNegative: [[UInt8]] = negative.filter { $0.unicodeScalars.contains { $0.value > 0x2E80 } }
        .map { Array($0.utf8) }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }

    public init() {}

    public func score(_ text: String, lang: String?) -> Double {
        var total = 0.0
        var negate = false
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter && $0 != "'" }) {
            let token = String(word)
            if Self.negators.contains(token) {
                negate = true
                continue
            }
            var value = 0.0
            if Self.positive.contains(token) { value = 1 }
            if Self.negative.contains(token) { value = -1 }
            // Scripts written without spaces: look for the listed words inside the token, byte-wise.
            if value == 0, token.utf8.contains(where: { $0 >= 0xE2 }) {
                let bytes = Array(token.utf8)
                if Self.cjkPositive.contains(where: { Self.contains(bytes, $0) }) { value += 1 }
                if Self.cjkNegative.contains(where: { Self.contains(bytes, $0) }) { value -= 1 }
            }
            total += negate ? -value : value
            if value != 0 { negate = false }
        }
        // Squash into (-1, 1) the way VADER normalises its sum.
        return total / (total * total + 15).squareRoot()
    }
}
