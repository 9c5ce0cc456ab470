/// The built-in comment scorer: VADER's rule layer (negation with a scope, boosters and diminishers,
/// contrast, exclamation marks, ALL CAPS, emoji and emoticons, stretched letters) over per-language
/// lexicons, with language identification when the event carries no `lang`.
///
/// One pass over the UTF-8 bytes tokenizes, lower-cases into a scratch buffer and counts the evidence
/// for identification (scripts, diacritics, stop words); a second pass looks the tokens up and scores.
/// Nothing is allocated per comment beyond one temporary buffer, so it runs at a few hundred thousand
/// comments a second on one core (`crowdpulse bench-sentiment`).
///
/// Text is scored by script run: Latin words with the identified Latin-script language (English words
/// still count in a code-switched Vietnamese or Spanish comment), Hangul with Korean, Han and Kana with
/// Japanese or Chinese. Nothing here can fail: empty, huge or odd text scores 0 at worst.
public struct MultilingualSentimentScorer: SentimentScorer {
    let resources: SentimentResources
    /// `false` scores with the lexicons alone (a plain sum of valences), to show what the rules add.
    let rules: Bool

    public init(rules: Bool = true) {
        self.resources = .shared
        self.rules = rules
    }

    public func score(_ text: String, lang: String?) -> Double {
        self.analyze(text, lang: lang).score
    }

    /// Scores `text`; `lang` (a BCP 47 tag) picks the lexicon when it names a supported language.
    public func analyze(_ text: String, lang: String? = nil) -> SentimentAnalysis {
        // Exact tags (the usual case) without the allocations of full tag parsing.
        let given = lang.flatMap { SentimentLanguage(rawValue: $0) ?? SentimentLanguage(tag: $0) }
        let hintChinese = lang.map { $0.hasPrefix("zh") || $0.hasPrefix("ZH") || $0.hasPrefix("Zh") } ?? false
        var text = text
        return text.withUTF8 { bytes in
            self.analyze(bytes, given: given, hintChinese: hintChinese)
        }
    }

    /// The terms that moved the score, with their signed contribution after the rules (negation,
    /// boosters, contrast), in text order: what an alert cites as its top negative terms.
    public func contributions(_ text: String, lang: String? = nil) -> [(term: String, contribution: Double)] {
        let given = lang.flatMap { SentimentLanguage(tag: $0) }
        let hintChinese = lang.map { $0.lowercased().hasPrefix("zh") } ?? false
        var terms: [(String, Double)] = []
        var text = text
        _ = text.withUTF8 { bytes in
            withUnsafeMutablePointer(to: &terms) {
                self.analyze(bytes, given: given, hintChinese: hintChinese, terms: $0)
            }
        }
        return terms.map { (term: $0.0, contribution: $0.1) }
    }

    /// The language identification alone.
    public func identify(_ text: String) -> SentimentLanguage? {
        self.analyze(text, lang: nil).language
    }

    /// Bytes held by the loaded lexicons and tables.
    public static var resourceBytes: Int { SentimentResources.shared.footprintBytes }

    /// Entries per language, to show that the resources loaded.
    public static func lexiconSize(_ language: SentimentLanguage) -> Int {
        SentimentResources.shared.tables[language]?.count ?? 0
    }

    // MARK: - Scanning

    /// Byte ranges in the scratch buffer, one per word, run or symbol.
    struct Token {
        var start: Int32
        var end: Int32
        var kind: Kind
        var flags: Flags

        enum Kind: UInt8 {
            case latin, hangul, cjk, emoji, emoticon
        }

        struct Flags: OptionSet {
            let rawValue: UInt8
            /// Sentence punctuation stands between this token and the one before.
            static let breakBefore = Flags(rawValue: 1)
            static let allCaps = Flags(rawValue: 2)
            /// The word has a letter repeated three times or more ("goooood").
            static let stretched = Flags(rawValue: 4)
            static let apostrophe = Flags(rawValue: 8)
        }
    }

    /// Counts that decide the language.
    struct Evidence {
        var hangul = 0
        var kana = 0
        var han = 0
        var hansOnly = 0
        var hantOnly = 0
        var japaneseOnly = 0
        var latinLetters = 0
        var latin = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

        mutating func addLatin(_ bit: Int, _ weight: Double) {
            switch bit {
            case 0: self.latin.0 += weight
            case 1: self.latin.1 += weight
            case 2: self.latin.2 += weight
            case 3: self.latin.3 += weight
            case 4: self.latin.4 += weight
            case 5: self.latin.5 += weight
            case 6: self.latin.6 += weight
            default: self.latin.7 += weight
            }
        }

        var latinScores: [Double] {
            [
                self.latin.0, self.latin.1, self.latin.2, self.latin.3, self.latin.4, self.latin.5, self.latin.6,
                self.latin.7,
            ]
        }
    }

    private enum CharClass {
        case latinLetter, otherLetter, digit, apostrophe, hangul, kana, han, emoji, modifier
        case exclamation, sentenceBreak, space, symbol
    }

    @inline(__always)
    private static func classify(_ value: UInt32) -> CharClass {
        if value < 0x80 {
            switch UInt8(value) {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return .latinLetter
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return .digit
            case UInt8(ascii: "'"): return .apostrophe
            case UInt8(ascii: "!"): return .exclamation
            case UInt8(ascii: "."), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: ":"), UInt8(ascii: "?"),
                0x0A, 0x0D:
                return .sentenceBreak
            case 0x20, 0x09: return .space
            default: return .symbol
            }
        }
        switch value {
        case 0xC0...0x24F:
            return value == 0xD7 || value == 0xF7 ? .symbol : .latinLetter
        case 0x300...0x36F: return .latinLetter  // combining diacritics (decomposed input)
        case 0x1E00...0x1EFF: return .latinLetter  // Vietnamese precomposed letters
        case 0x2019: return .apostrophe
        case 0xAC00...0xD7A3, 0x1100...0x11FF, 0x3130...0x318F: return .hangul
        case 0x3040...0x30FF, 0x31F0...0x31FF, 0xFF66...0xFF9F: return .kana
        case 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF, 0x20000...0x2FFFF, 0x3005: return .han
        case 0xFF01: return .exclamation
        case 0x3001, 0x3002, 0xFF0C, 0xFF0E, 0xFF1A, 0xFF1B, 0xFF1F, 0x2026, 0x2028, 0x2029, 0x85: return .sentenceBreak
        case 0xFE0E, 0xFE0F, 0x200D, 0x1F3FB...0x1F3FF, 0xE0020...0xE007F: return .modifier
        case 0x1F000...0x1FAFF, 0x2600...0x27BF, 0x2B00...0x2BFF, 0x2300...0x23FF, 0x2190...0x21FF, 0x3030, 0x303D,
            0x3297, 0x3299, 0x203C, 0x2049, 0x2122, 0x2139:
            return .emoji
        case 0x2000...0x200C, 0x202F, 0x205F, 0x3000, 0xA0: return .space
        default:
            guard let scalar = Unicode.Scalar(value) else { return .symbol }
            return scalar.properties.isAlphabetic ? .otherLetter : .symbol
        }
    }

    /// Writes the lower-case form of a Latin letter; returns the number of bytes written.
    @inline(__always)
    private static func writeLowercase(
        _ value: UInt32,
        isUpper: inout Bool,
        to out: UnsafeMutablePointer<UInt8>
    ) -> Int {
        var lower = value
        isUpper = false
        switch value {
        case 0x41...0x5A: lower = value + 0x20
        case 0xC0...0xDE where value != 0xD7: lower = value + 0x20
        case 0x100...0x137, 0x14A...0x177, 0x1A0...0x1A1, 0x1E00...0x1EFF:
            if value & 1 == 0 { lower = value + 1 }
        case 0x139...0x148, 0x179...0x17E:
            if value & 1 == 1 { lower = value + 1 }
        case 0x178: lower = 0xFF
        case 0x1AF: lower = 0x1B0
        default: break
        }
        if lower != value {
            isUpper = true
        } else if value >= 0x250, let scalar = Unicode.Scalar(value), scalar.properties.isUppercase,
            let mapped = scalar.properties.lowercaseMapping.unicodeScalars.first
        {
            lower = mapped.value
            isUpper = true
        }
        return Self.writeUTF8(lower, to: out)
    }

    @inline(__always)
    private static func writeUTF8(_ value: UInt32, to out: UnsafeMutablePointer<UInt8>) -> Int {
        switch value {
        case 0..<0x80:
            out[0] = UInt8(value)
            return 1
        case 0x80..<0x800:
            out[0] = UInt8(0xC0 | (value >> 6))
            out[1] = UInt8(0x80 | (value & 0x3F))
            return 2
        case 0x800..<0x10000:
            out[0] = UInt8(0xE0 | (value >> 12))
            out[1] = UInt8(0x80 | ((value >> 6) & 0x3F))
            out[2] = UInt8(0x80 | (value & 0x3F))
            return 3
        default:
            out[0] = UInt8(0xF0 | (value >> 18))
            out[1] = UInt8(0x80 | ((value >> 12) & 0x3F))
            out[2] = UInt8(0x80 | ((value >> 6) & 0x3F))
            out[3] = UInt8(0x80 | (value & 0x3F))
            return 4
        }
    }

    /// Decodes the scalar at `index` of valid UTF-8 (Swift strings always are); returns it and its width.
    @inline(__always)
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int) -> (UInt32, Int) {
        let lead = UInt32(bytes[index])
        if lead < 0x80 { return (lead, 1) }
        if lead < 0xE0 {
            guard index + 1 < bytes.count else { return (0xFFFD, 1) }
            return (((lead & 0x1F) << 6) | (UInt32(bytes[index + 1]) & 0x3F), 2)
        }
        if lead < 0xF0 {
            guard index + 2 < bytes.count else { return (0xFFFD, 1) }
            return (
                ((lead & 0x0F) << 12) | ((UInt32(bytes[index + 1]) & 0x3F) << 6) | (UInt32(bytes[index + 2]) & 0x3F), 3
            )
        }
        guard index + 3 < bytes.count else { return (0xFFFD, 1) }
        return (
            ((lead & 0x07) << 18) | ((UInt32(bytes[index + 1]) & 0x3F) << 12)
                | ((UInt32(bytes[index + 2]) & 0x3F) << 6) | (UInt32(bytes[index + 3]) & 0x3F), 4
        )
    }

    private func analyze(
        _ bytes: UnsafeBufferPointer<UInt8>,
        given: SentimentLanguage?,
        hintChinese: Bool,
        terms: UnsafeMutablePointer<[(String, Double)]>? = nil
    ) -> SentimentAnalysis {
        guard !bytes.isEmpty else {
            return SentimentAnalysis(score: 0, label: .neutral, language: given)
        }
        // Lower-casing never grows a Latin letter by more than one byte; each token adds one space.
        let scratchCount = bytes.count * 2 + 16
        // The three buffers in one temporary allocation (tokens, items, then the bytes). A comment of a hundred
        // bytes needs about 4 KiB, more than is taken from the stack, and three heap blocks of that size (one
        // per buffer) were about 1.5 % of `bench-pipeline`'s CPU in malloc and free (session 15's profile).
        let tokensBytes = Self.rounded(MemoryLayout<Token>.stride * (bytes.count + 1), to: MemoryLayout<Item>.alignment)
        let itemsBytes = MemoryLayout<Item>.stride * (bytes.count + 2)
        let alignment = max(MemoryLayout<Token>.alignment, MemoryLayout<Item>.alignment)
        return withUnsafeTemporaryAllocation(
            byteCount: tokensBytes + itemsBytes + scratchCount,
            alignment: alignment
        ) { buffer in
            let base = buffer.baseAddress!
            return self.analyze(
                bytes,
                given: given,
                hintChinese: hintChinese,
                terms: terms,
                scratch: (base + tokensBytes + itemsBytes).bindMemory(to: UInt8.self, capacity: scratchCount),
                tokens: base.bindMemory(to: Token.self, capacity: bytes.count + 1),
                items: (base + tokensBytes).bindMemory(to: Item.self, capacity: bytes.count + 2)
            )
        }
    }

    /// `count` rounded up to a multiple of `alignment` (a power of two).
    private static func rounded(_ count: Int, to alignment: Int) -> Int {
        (count + alignment - 1) & ~(alignment - 1)
    }

    private func analyze(
        _ bytes: UnsafeBufferPointer<UInt8>,
        given: SentimentLanguage?,
        hintChinese: Bool,
        terms: UnsafeMutablePointer<[(String, Double)]>?,
        scratch: UnsafeMutablePointer<UInt8>,
        tokens: UnsafeMutablePointer<Token>,
        items: UnsafeMutablePointer<Item>
    ) -> SentimentAnalysis {
        let resources = self.resources
        var evidence = Evidence()
        var tokenCount = 0
        var written = 0
        var exclamations = 0
        var pendingBreak = false
        var capsWords = 0
        var lowerWords = 0

        // The token being built.
        var current: Token.Kind? = nil
        var tokenStart = 0
        var upperLetters = 0
        var letters = 0
        var lastLetter: UInt32 = 0
        var runLength = 0
        var flags: Token.Flags = []
        var vietnameseMarks = 0
        var latvianMarks = 0

        func finish() {
            guard let kind = current else { return }
            current = nil
            if written == tokenStart { return }
            var tokenFlags = flags
            if pendingBreak { tokenFlags.insert(.breakBefore) }
            pendingBreak = false
            if kind == .latin {
                if letters >= 2 && upperLetters == letters {
                    tokenFlags.insert(.allCaps)
                    capsWords += 1
                } else if letters > 0 {
                    lowerWords += 1
                }
                // Identification evidence: stop words and lexicon membership of each Latin language.
                if let entry = resources.latinIdentification.lookup(
                    UnsafeBufferPointer(start: scratch + tokenStart, count: written - tokenStart)
                ) {
                    let stops = entry.stopMask.nonzeroBitCount
                    let lexicons = entry.lexiconMask.nonzeroBitCount
                    for bit in 0..<SentimentLanguage.latin.count {
                        if entry.stopMask & (1 << bit) != 0 { evidence.addLatin(bit, 1.0 / Double(stops)) }
                        if entry.lexiconMask & (1 << bit) != 0 { evidence.addLatin(bit, 0.5 / Double(lexicons)) }
                    }
                }
            }
            tokens[tokenCount] = Token(start: Int32(tokenStart), end: Int32(written), kind: kind, flags: tokenFlags)
            tokenCount += 1
            scratch[written] = 0x20
            written += 1
        }

        func begin(_ kind: Token.Kind) {
            current = kind
            tokenStart = written
            upperLetters = 0
            letters = 0
            lastLetter = 0
            runLength = 0
            flags = []
        }

        var index = 0
        var skipNextEmoji = false
        while index < bytes.count {
            let (value, width) = Self.decode(bytes, index)
            let charClass = Self.classify(value)
            switch charClass {
            case .latinLetter, .otherLetter, .digit, .apostrophe:
                if current != .latin {
                    finish()
                    begin(.latin)
                }
                if charClass == .apostrophe {
                    scratch[written] = UInt8(ascii: "'")
                    written += 1
                    flags.insert(.apostrophe)
                } else if charClass == .digit {
                    scratch[written] = UInt8(value)
                    written += 1
                } else {
                    var isUpper = false
                    written += Self.writeLowercase(value, isUpper: &isUpper, to: scratch + written)
                    letters += 1
                    if isUpper { upperLetters += 1 }
                    evidence.latinLetters += 1
                    if value == lastLetter || (isUpper && value + 0x20 == lastLetter) {
                        runLength += 1
                        if runLength >= 3 { flags.insert(.stretched) }
                    } else {
                        runLength = 1
                    }
                    lastLetter = isUpper && value < 0x80 ? value + 0x20 : value
                    if value >= 0x80 {
                        switch value {
                        case 0x1EA0...0x1EF9, 0x1A0, 0x1A1, 0x1AF, 0x1B0, 0x110, 0x111, 0x102, 0x103:
                            vietnameseMarks += 1
                        case 0x100, 0x101, 0x112, 0x113, 0x12A, 0x12B, 0x16A, 0x16B, 0x136, 0x137, 0x13B, 0x13C,
                            0x145, 0x146, 0x122, 0x123:
                            latvianMarks += 1
                        case 0x160, 0x161, 0x17D, 0x17E, 0x10C, 0x10D:
                            evidence.addLatin(7, 0.5)
                        case 0xC4, 0xE4, 0xD6, 0xF6, 0xDC, 0xFC, 0xDF: evidence.addLatin(4, 1)
                        case 0xD1, 0xF1: evidence.addLatin(1, 1.5)
                        case 0xC3, 0xE3, 0xD5, 0xF5: evidence.addLatin(2, 1.5)
                        case 0xC7, 0xE7:
                            evidence.addLatin(2, 0.5)
                            evidence.addLatin(3, 0.5)
                        case 0xC8, 0xE8, 0xCB, 0xEB, 0xCF, 0xEF, 0xCE, 0xEE, 0xDB, 0xFB, 0xD9, 0xF9, 0x152, 0x153:
                            evidence.addLatin(3, 1)
                        default: break
                        }
                    }
                }
            case .hangul:
                if current != .hangul {
                    finish()
                    begin(.hangul)
                }
                evidence.hangul += 1
                written += Self.writeUTF8(value, to: scratch + written)
            case .kana, .han:
                if current != .cjk {
                    finish()
                    begin(.cjk)
                }
                if charClass == .kana {
                    evidence.kana += 1
                } else {
                    evidence.han += 1
                    if resources.hansOnly.contains(value) { evidence.hansOnly += 1 }
                    if resources.hantOnly.contains(value) { evidence.hantOnly += 1 }
                    if resources.japaneseOnly.contains(value) { evidence.japaneseOnly += 1 }
                }
                written += Self.writeUTF8(value, to: scratch + written)
            case .emoji:
                finish()
                if skipNextEmoji {
                    skipNextEmoji = false
                } else {
                    begin(.emoji)
                    written += Self.writeUTF8(value, to: scratch + written)
                    finish()
                }
            case .modifier:
                // A joiner glues the next emoji to this one: "👨‍👩‍👧" is one family, not three faces.
                if value == 0x200D { skipNextEmoji = true }
            case .exclamation, .sentenceBreak, .symbol, .space:
                finish()
                // ASCII emoticons start with punctuation: ":)", ":-(", "<3", ";P".
                // Not the ":/" of "https://".
                let isURL =
                    value == 0x3A && index + 2 < bytes.count && bytes[index + 1] == 0x2F && bytes[index + 2] == 0x2F
                if value < 0x80, charClass != .space, !isURL,
                    let length = Self.matchEmoticon(bytes, index, resources.emoji)
                {
                    begin(.emoticon)
                    for offset in 0..<length {
                        let byte = bytes[index + offset]
                        scratch[written] = byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
                        written += 1
                    }
                    finish()
                    index += length
                    continue
                }
                if charClass == .exclamation {
                    exclamations += 1
                    pendingBreak = true
                } else if charClass == .sentenceBreak {
                    pendingBreak = true
                }
            }
            if charClass != .modifier && charClass != .emoji { skipNextEmoji = false }
            index += width
        }
        finish()
        if vietnameseMarks > 0 { evidence.addLatin(6, 2 * Double(vietnameseMarks)) }
        if latvianMarks > 0 { evidence.addLatin(7, 2 * Double(latvianMarks)) }

        let language = given ?? Self.decide(evidence, hintChinese: hintChinese)
        let sum = self.score(
            tokens: tokens,
            count: tokenCount,
            scratch: scratch,
            language: language,
            capsDifferential: capsWords > 0 && lowerWords > 0,
            items: items,
            terms: terms
        )
        var total = sum
        if self.rules && total != 0 && exclamations > 0 {
            let emphasis = Double(min(exclamations, 4)) * 0.292
            total += total > 0 ? emphasis : -emphasis
        }
        var score = total / (total * total + 15).squareRoot()
        score = min(1, max(-1, score))
        return SentimentAnalysis(score: score, label: SentimentLabel(score: score), language: language)
    }

    /// Picks a language from the counted evidence: Hangul is Korean; Kana (or Japanese-only kanji)
    /// is Japanese; other Han text is Chinese, Traditional when its script-specific characters say
    /// so; Latin text goes to the language with the most stop-word, lexicon and diacritic evidence,
    /// English when nothing tells.
    static func decide(_ evidence: Evidence, hintChinese: Bool) -> SentimentLanguage? {
        let cjk = evidence.han + evidence.kana
        if evidence.hangul > 0 && evidence.hangul >= cjk && evidence.hangul * 2 >= evidence.latinLetters {
            return .korean
        }
        if cjk > 0 && cjk * 3 >= evidence.latinLetters {
            if !hintChinese
                && ((evidence.kana > 0 && (evidence.kana >= 2 || evidence.kana * 4 >= cjk))
                    || (evidence.japaneseOnly > 0 && evidence.japaneseOnly > evidence.hansOnly
                        && evidence.japaneseOnly > evidence.hantOnly))
            {
                return .japanese
            }
            return evidence.hantOnly > evidence.hansOnly ? .chineseTraditional : .chineseSimplified
        }
        if evidence.latinLetters > 0 {
            let scores = evidence.latinScores
            var best = 0
            for index in scores.indices where scores[index] > scores[best] { best = index }
            return scores[best] > 0 ? SentimentLanguage.latin[best] : .english
        }
        if evidence.hangul > 0 { return .korean }
        return nil
    }

    /// The length of the longest emoticon at `index`, if any.
    private static func matchEmoticon(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int, _ table: TermTable) -> Int? {
        var best: Int? = nil
        var length = 1
        var buffer: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &buffer) { raw -> Int? in
            let key = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            while length <= 6 && index + length <= bytes.count {
                let byte = bytes[index + length - 1]
                guard byte < 0x80, byte > 0x20 else { break }
                key[length - 1] = byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
                guard let entry = table.lookup(UnsafeBufferPointer(start: key, count: length)) else { break }
                if entry.flags.contains(.sentiment) && length >= 2 { best = length }
                if !entry.flags.contains(.prefix) { break }
                length += 1
            }
            return best
        }
    }
}
