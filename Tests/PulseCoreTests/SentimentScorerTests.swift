import PulseCore
import Testing

@Suite("Multilingual sentiment scorer")
struct SentimentScorerTests {
    let scorer = MultilingualSentimentScorer()

    func score(_ text: String, _ lang: String? = nil) -> Double {
        self.scorer.analyze(text, lang: lang).score
    }

    @Test("the shipped lexicons load for every language", arguments: SentimentLanguage.allCases)
    func resourcesLoad(language: SentimentLanguage) {
        #expect(MultilingualSentimentScorer.lexiconSize(language) >= 300)
    }

    /// (language, positive text, its negation)
    static let negations: [(String, String, String)] = [
        ("en", "good", "not good"),
        ("es", "es bueno", "no es bueno"),
        ("pt", "é bom", "não é bom"),
        ("fr", "c'est bon", "ce n'est pas bon"),
        ("de", "das ist gut", "das ist nicht gut"),
        ("id", "bagus", "tidak bagus"),
        ("vi", "tốt", "không tốt"),
        ("lv", "labi", "nav labi"),
        ("zh-Hans", "很好", "不好"),
        ("zh-Hant", "這個很好用", "這個不好用"),
        ("ja", "良い", "良くない"),
        ("ko", "좋아", "안 좋아"),
        ("ko", "좋아요", "좋지 않아요"),
    ]

    @Test("a negation flips a positive word to negative", arguments: negations)
    func negationFlips(lang: String, positive: String, negated: String) {
        for given in [lang, nil] {
            #expect(self.score(positive, given) >= 0.05, "\(positive) [\(given ?? "identified")]")
            #expect(self.score(negated, given) <= -0.05, "\(negated) [\(given ?? "identified")]")
        }
    }

    /// (language, plain, intensified, diminished or nil)
    static let intensifiers: [(String, String, String, String?)] = [
        ("en", "the service was bad", "the service was extremely bad", "the service was slightly bad"),
        ("es", "el servicio fue malo", "el servicio fue muy malo", nil),
        ("pt", "o produto é bom", "o produto é muito bom", nil),
        ("fr", "le produit est bon", "le produit est très bon", nil),
        ("de", "das Produkt ist gut", "das Produkt ist sehr gut", nil),
        ("id", "produknya bagus", "produknya sangat bagus", nil),
        ("vi", "sản phẩm tốt", "sản phẩm rất tốt", nil),
        ("lv", "produkts ir labs", "produkts ir ļoti labs", nil),
        ("zh-Hans", "质量好", "质量非常好", nil),
        ("ja", "この商品は良い", "この商品はとても良い", nil),
        ("ko", "배송이 늦어요", "배송이 너무 늦어요", nil),
    ]

    @Test("intensifiers scale up, diminishers scale down", arguments: intensifiers)
    func intensifiersScale(lang: String, plain: String, intensified: String, diminished: String?) {
        let base = abs(self.score(plain, lang))
        #expect(base >= 0.05, "\(plain)")
        #expect(abs(self.score(intensified, lang)) > base, "\(intensified)")
        #expect(self.score(intensified, lang).sign == self.score(plain, lang).sign)
        if let diminished {
            #expect(abs(self.score(diminished, lang)) < base, "\(diminished)")
        }
    }

    /// (language, "A but B" with A positive and B negative, "A but B" with A negative and B positive)
    static let contrasts: [(String, String, String)] = [
        ("en", "The camera is great but the battery is terrible", "The battery is terrible but the camera is great"),
        ("es", "La cámara es buena pero la batería es horrible", "La batería es horrible pero la cámara es buena"),
        ("vi", "Máy đẹp nhưng pin rất tệ", "Pin rất tệ nhưng máy đẹp"),
        ("zh-Hans", "外观很好看但是电池太差了", "电池太差了但是外观很好看"),
        ("ja", "デザインは良いでもバッテリーが最悪", "バッテリーが最悪でもデザインは良い"),
        ("ko", "디자인은 좋은데 하지만 배터리가 최악이에요", "배터리가 최악이에요 하지만 디자인은 좋아요"),
        ("lv", "Dizains ir labs, bet baterija ir briesmīga", "Baterija ir briesmīga, bet dizains ir labs"),
    ]

    @Test("contrast shifts the weight to the second clause", arguments: contrasts)
    func contrastShiftsWeight(lang: String, thenNegative: String, thenPositive: String) {
        #expect(self.score(thenNegative, lang) < 0, "\(thenNegative)")
        #expect(self.score(thenPositive, lang) > 0, "\(thenPositive)")
    }

    @Test("emoji and emoticons score on their own")
    func emojiAlone() {
        for text in ["😡", "🤬🤬", "👎", ":(", ":-(", "💔", "😭😭😭 :'("] {
            #expect(self.score(text) <= -0.05, "\(text)")
        }
        for text in ["😍", "❤️", "👍🏽", ":)", ":-D", "<3", "🥰🥰"] {
            #expect(self.score(text) >= 0.05, "\(text)")
        }
        // A negation does not turn an angry face happy.
        #expect(self.score("not happy 😡") < self.score("😡") / 2 || self.score("not happy 😡") <= -0.05)
    }

    @Test("exclamation marks, ALL CAPS and stretched letters emphasise")
    func emphasis() {
        #expect(self.score("this is bad!!!") < self.score("this is bad"))
        #expect(self.score("this is BAD, really") < self.score("this is bad, really"))
        #expect(self.score("sooo goood") >= 0.05)
    }

    @Test("mixed-language and code-switched comments score sensibly")
    func codeSwitching() {
        #expect(self.score("Sản phẩm này rất tệ, so disappointed") <= -0.05)
        #expect(self.score("Me encanta, best purchase ever") >= 0.05)
        #expect(self.score("iPhone 15 的质量太差了, totally broken") <= -0.05)
        #expect(self.score("このアプリ最高! love it") >= 0.05)
        #expect(self.score("배송 너무 늦어요 worst service") <= -0.05)
        // Nothing outside [-1, 1] whatever the mix.
        let mixed = "Great 很好 最悪 최고 tệ labi 😡 :) not bad nhưng 但是 でも 하지만 " + String(repeating: "!", count: 50)
        let value = self.score(mixed)
        #expect(value >= -1 && value <= 1 && value.isFinite)
    }

    /// (text, expected language)
    static let identification: [(String, SentimentLanguage)] = [
        ("thanks, this is great", .english),
        ("The delivery was late and nobody answered my emails for two weeks.", .english),
        ("gracias por todo", .spanish),
        ("El pedido llegó tarde y el producto no funciona, quiero mi dinero.", .spanish),
        ("obrigado pela entrega", .portuguese),
        ("Não recomendo, o produto chegou quebrado e ninguém responde.", .portuguese),
        ("merci beaucoup", .french),
        ("Je suis très déçu, la commande n'est jamais arrivée.", .french),
        ("danke schön", .german),
        ("Die Lieferung war pünktlich und die Qualität ist wirklich gut.", .german),
        ("terima kasih kak", .indonesian),
        ("Barangnya sudah sampai tapi warnanya tidak sesuai dengan foto.", .indonesian),
        ("cảm ơn shop", .vietnamese),
        ("Giao hàng nhanh, đóng gói cẩn thận, sẽ ủng hộ shop lần sau.", .vietnamese),
        ("paldies", .latvian),
        ("Pasūtījums atnāca ātri, bet izmērs nebija pareizs.", .latvian),
        ("谢谢", .chineseSimplified),
        ("这个产品质量很好，物流也很快，下次还会再买。", .chineseSimplified),
        ("謝謝", .chineseTraditional),
        ("這間店的服務態度真的很差，等了一個小時還沒有送到。", .chineseTraditional),
        ("ありがとう", .japanese),
        ("配送が遅すぎて、届いた商品も壊れていました。", .japanese),
        ("감사합니다", .korean),
        ("배송이 빠르고 포장도 꼼꼼해서 만족합니다.", .korean),
    ]

    @Test("language identification on short and long texts", arguments: identification)
    func identifies(text: String, expected: SentimentLanguage) {
        #expect(self.scorer.identify(text) == expected, "\(text)")
    }

    @Test("a given lang wins; Chinese tags are reported as zh-Hans or zh-Hant")
    func givenLanguage() {
        #expect(self.scorer.analyze("bad", lang: "vi").languageTag == "vi")
        #expect(self.scorer.analyze("好", lang: "zh-TW").languageTag == "zh-Hant")
        #expect(self.scorer.analyze("好", lang: "zh-CN").languageTag == "zh-Hans")
        #expect(self.scorer.analyze("謝謝你們的服務", lang: "zh").languageTag == "zh-Hant")
        #expect(self.scorer.analyze("谢谢你们的服务", lang: "zh").languageTag == "zh-Hans")
        #expect(self.scorer.analyze("great", lang: "xx").languageTag == "en")
        #expect(self.scorer.analyze("👍", lang: nil).languageTag == "und")
    }

    @Test("never crashes: empty, huge, emoji-only, control and odd Unicode")
    func robustness() {
        var random = SplitMix64(seed: 42)
        let pieces = [
            "good", "不", "😡", "\u{200D}", "\u{FE0F}", "\u{0301}", "ā", "\u{0000}", "\u{FFFD}", "'", "!", "：",
            "ㅋㅋ", "ない", "’", ":)", "<3", " ", "\n", "İ", "ß", "Ǆ", "𠜎", "\u{E0067}", "🏽",
        ]
        var texts = [
            "", " ", "!!!!", "😀😃😄😁😆😅🤣😂🙂🙃", String(repeating: "😡", count: 4096),
            String(repeating: "terrible ", count: 2000), String(repeating: "好", count: 6000),
            String(repeating: "a", count: 16_384), String(repeating: "\u{0301}", count: 5000),
            String(repeating: ":", count: 10_000), "\u{200D}\u{200D}😀", "'''", "n'", "'n",
        ]
        for _ in 0..<2000 {
            var text = ""
            for _ in 0..<Int(random.next() % 40) { text += pieces[Int(random.next() % UInt64(pieces.count))] }
            texts.append(text)
        }
        for text in texts {
            let analysis = self.scorer.analyze(text, lang: nil)
            #expect(analysis.score.isFinite && analysis.score >= -1 && analysis.score <= 1)
            #expect(analysis.label == SentimentLabel(score: analysis.score))
        }
        #expect(self.score(String(repeating: "terrible ", count: 2000)) < -0.9)
    }

    @Test("lexicon-only mode ignores the rules")
    func lexiconOnly() {
        let plain = MultilingualSentimentScorer(rules: false)
        #expect(plain.score("good", lang: "en") > 0)
        #expect(plain.score("not good", lang: "en") > 0)
        #expect(self.score("not good", "en") < 0)
    }
}

@Suite("Sentiment in the pipeline")
struct SentimentPipelineTests {
    /// One negative comment per language, without `lang` and without `sentiment`: the built-in scorer
    /// must label every one negative in the subject's window record.
    static let negativeComments = [
        "Worst purchase ever, it broke after a day.", "Muy decepcionado, llegó roto.",
        "Péssimo atendimento, não recomendo.",
        "Service client horrible, très déçu.", "Totaler Schrott, sehr enttäuscht.", "Barangnya rusak, kecewa banget.",
        "Sản phẩm rất tệ, thất vọng quá.", "Briesmīgs serviss, ļoti vīlies.", "质量太差了，非常失望。", "服務態度很差，非常失望。",
        "最悪の対応でした。がっかりです。", "배송이 너무 늦고 최악이에요.",
    ]

    @Test("comments without a sentiment field are scored by the built-in scorer, in every language")
    func pipelineScoresComments() throws {
        var replay = Replay(sourceName: "test", detection: nil)
        var lines: [OutputLine] = []
        for (index, text) in Self.negativeComments.enumerated() {
            let json =
                #"{"event_id":"c\#(index)","type":"comment","occurred_at":1793577600000,"subject_id":"post-\#(index)","user_id":"u\#(index)","text":"\#(text)"}"#
            var bytes = Array(json.utf8)
            lines += bytes.withUnsafeMutableBytes { replay.feed(UnsafeRawBufferPointer($0), offset: Int64(index)) }
        }
        lines += replay.finish()
        var negative: [String: Int] = [:]
        for line in lines where line.topic == "metrics" {
            guard case .json(let text) = line.value, let record = parseJSONObject(text),
                let sentiment = record["sentiment"] as? [String: Any]
            else { continue }
            negative[record["entity"] as? String ?? ""] = sentiment["negative"] as? Int
        }
        for index in Self.negativeComments.indices {
            #expect(negative["post-\(index)"] == 1, "\(Self.negativeComments[index])")
        }
    }
}
