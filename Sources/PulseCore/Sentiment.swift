/// Scores a comment's text in [-1, 1]. The built-in implementation is ``MultilingualSentimentScorer``;
/// the pipeline only needs this protocol.
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
