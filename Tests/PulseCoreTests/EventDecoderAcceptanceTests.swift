import Foundation
import PulseCore
import Testing

@Suite("Event decoder: accepted events and RFC 8259 details")
struct EventDecoderAcceptanceTests {
    let decoder = EventDecoder()

    func decode(_ text: String) throws -> Event {
        try self.decoder.decode(text, nowMillis: nowMillis).get()
    }

    @Test("A full comment with every optional field")
    func fullComment() throws {
        let text = """
            {"event_id":"c-1","type":"comment","occurred_at":"2026-11-26T10:00:00.250+01:00","subject_id":"post-9",
             "brand":"acme","user_id":"u-7","platform":"tiktok","text":"Terrible! 😡","lang":"en-US","sentiment":-0.8,
             "user":{"created_at":"2026-11-20T08:00:00Z","followers":1200,"verified":true}}
            """
        let decoded = try self.decode(text)
        #expect(
            decoded
                == Event(
                    eventID: "c-1",
                    kind: .comment,
                    occurredAt: nowMillis - 3_600_000 + 250,
                    subjectID: "post-9",
                    userID: "u-7",
                    brand: "acme",
                    platform: "tiktok",
                    text: "Terrible! 😡",
                    lang: "en-US",
                    sentiment: -0.8,
                    user: Event.User(
                        createdAt: nowMillis - 6 * 86_400_000 - 2 * 3_600_000,
                        followers: 1200,
                        verified: true
                    )
                )
        )
    }

    @Test("A purchase with epoch-millisecond time; currency is optional")
    func purchase() throws {
        let purchase = try self.decode(
            event(["type": #""purchase""#, "occurred_at": "1795687200000", "amount": "19.99"])
        )
        #expect(purchase.kind == .purchase && purchase.amount == 19.99 && purchase.currency == nil)
        #expect(purchase.occurredAt == nowMillis)
        let withCurrency = try self.decode(event(["type": #""purchase""#, "amount": "0", "currency": #""EUR""#]))
        #expect(withCurrency.amount == 0 && withCurrency.currency == "EUR")
    }

    @Test("A share with a parent, and a view")
    func shareAndView() throws {
        #expect(try self.decode(event(["type": #""share""#, "parent_event_id": #""s-0""#])).parentEventID == "s-0")
        #expect(try self.decode(event(["type": #""view""#])).kind == .view)
    }

    @Test("String escapes, including surrogate pairs, are decoded")
    func escapes() throws {
        let decoded = try self.decode(
            event(["type": #""comment""#, "text": #""a\"b\\c\/d\b\f\n\r\t \u00e9 \u4e2d \ud83d\ude00 \u0000""#])
        )
        #expect(decoded.text == "a\"b\\c/d\u{08}\u{0C}\n\r\t é 中 😀 \u{0}")
    }

    @Test("Member names with escapes match the contract's names")
    func escapedMemberNames() throws {
        let text =
            #"{"\u0065vent_id":"e-9","type":"like","occurred_at":"2026-11-26T10:00:00Z","subject\u005fid":"p","user_id":"u"}"#
        let decoded = try self.decode(text)
        #expect(decoded.eventID == "e-9" && decoded.subjectID == "p")
    }

    @Test("Raw UTF-8 in strings, in many scripts")
    func rawUnicode() throws {
        for text in ["Rất tệ, tôi thất vọng", "Ļoti labs", "服務太差了", "とても良い", "배송이 늦어요", "👍🏽"] {
            let decoded = try self.decode(event(["type": #""comment""#, "text": "\"\(text)\""]))
            #expect(decoded.text == text)
        }
    }

    @Test(
        "Numbers with exponents, fractions and signs",
        arguments: [
            ("1e1", 10.0), ("1E+1", 10.0), ("2.5e-1", 0.25), ("0.125", 0.125), ("-0", 0.0), ("100e-2", 1.0),
            ("0.1", 0.1), ("123456789012345678901234567890e-29", 1.2345678901234568), ("4.9e-324", 4.9e-324),
            ("1.7976931348623157e308", 1.7976931348623157e308),
        ]
    )
    func numbers(_ text: String, _ expected: Double) throws {
        let decoded = try self.decode(event(["type": #""purchase""#, "amount": text.hasPrefix("-") ? "0" : text]))
        if !text.hasPrefix("-") { #expect(decoded.amount == expected) }
    }

    @Test("Whole numbers written with fractions or exponents are whole")
    func wholeNumbers() throws {
        #expect(try self.decode(event(["occurred_at": "1.7956872e12"])).occurredAt == 1_795_687_200_000)
        #expect(try self.decode(event(["user": #"{"followers":12.0}"#])).user?.followers == 12)
        #expect(try self.decode(event(["user": #"{"followers":-0}"#])).user?.followers == 0)
    }

    @Test("Whitespace anywhere between tokens")
    func whitespace() throws {
        let text =
            " \n\t{ \"event_id\" : \"e\" ,\r\n \"type\":\t\"like\" , \"occurred_at\" :1795687200000 ,"
            + " \"subject_id\":\"p\",\"user_id\" : \"u\" } \n "
        #expect(try self.decode(text).eventID == "e")
    }

    @Test("Unknown members are ignored, however nested (up to 64 levels)")
    func unknownMembers() throws {
        let deep = String(repeating: "[", count: 63) + String(repeating: "]", count: 63)
        let text = event([
            "meta": #"{"a":[1,2.5e3,{"b":null,"c":true}],"d":"\ud83d\ude00"}"#, "deep": deep, "z": "false",
        ])
        #expect(try self.decode(text).eventID == "e-1")
    }

    @Test("With duplicate member names the last one wins")
    func duplicateKeys() throws {
        let text =
            String(event().dropLast()) + #","event_id":"second","user":{"followers":1},"user":{"verified":false}}"#
        let decoded = try self.decode(text)
        #expect(decoded.eventID == "second")
        #expect(decoded.user == Event.User(verified: false))
    }

    @Test("null for an optional member means absent")
    func nullOptional() throws {
        let decoded = try self.decode(event(["brand": "null", "platform": "null", "user": "null"]))
        #expect(decoded.brand == nil && decoded.platform == nil && decoded.user == nil)
        let comment = try self.decode(
            event(["type": #""comment""#, "text": #""x""#, "lang": "null", "sentiment": "null"])
        )
        #expect(comment.lang == nil && comment.sentiment == nil)
    }

    @Test("Members that do not apply to the type are ignored whatever their value")
    func inapplicableMembers() throws {
        let like = try self.decode(
            event(["text": "42", "amount": #""lots""#, "currency": "1", "parent_event_id": "[]", "sentiment": "9"])
        )
        #expect(like.text == nil && like.amount == nil && like.currency == nil && like.parentEventID == nil)
        let share = try self.decode(event(["type": #""share""#, "text": "{}", "amount": "-5"]))
        #expect(share.text == nil && share.amount == nil)
    }

    @Test("Edge values at the limits are accepted")
    func limits() throws {
        let id = String(repeating: "x", count: 128)
        #expect(try self.decode(event(["event_id": "\"\(id)\""])).eventID == id)
        #expect(try self.decode(event(["occurred_at": #""1970-01-01T00:00:00Z""#])).occurredAt == 0)
        #expect(try self.decode(event(["occurred_at": "\(nowMillis + 300_000)"])).occurredAt == nowMillis + 300_000)
        #expect(try self.decode(event(["occurred_at": #""2024-02-29T23:59:60Z""#])).occurredAt == 1_709_251_199_999)
        let sentiment = try self.decode(event(["type": #""comment""#, "text": #""x""#, "sentiment": "-1"]))
        #expect(sentiment.sentiment == -1)
        #expect(
            try self.decode(event(["type": #""comment""#, "text": #""x""#, "lang": #""zh-Hant-TW""#])).lang
                == "zh-Hant-TW"
        )
    }

    @Test("Synthetic benchmark events decode to what was generated")
    func syntheticEvents() throws {
        var generator = SyntheticEvents()
        for index in 0..<2000 {
            let generated = generator.next(occurredAtMillis: nowMillis + Int64(index))
            let decoded = try self.decode(generated.json)
            #expect(decoded.kind.description == generated.type)
            #expect(decoded.subjectID == generated.key)
            #expect(decoded.occurredAt == nowMillis + Int64(index))
        }
    }
}

@Suite("RFC 3339")
struct RFC3339Tests {
    @Test(
        "Parses and formats round trip",
        arguments: [
            ("1970-01-01T00:00:00Z", Int64(0)), ("2026-11-26T10:00:00Z", nowMillis),
            ("2026-11-26T10:00:00.5Z", nowMillis + 500),
            ("2026-11-26T11:30:00+01:30", nowMillis), ("2026-11-26t10:00:00z", nowMillis),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("2026-11-26T10:00:00.123456789Z", nowMillis + 123),
        ]
    )
    func parses(_ text: String, _ millis: Int64) {
        #expect(RFC3339.parseMillis(text) == millis)
    }

    @Test func formats() {
        #expect(RFC3339.format(millis: nowMillis) == "2026-11-26T10:00:00Z")
        #expect(RFC3339.format(millis: nowMillis + 7) == "2026-11-26T10:00:00.007Z")
        #expect(RFC3339.format(millis: 0) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.format(millis: 951_782_400_000) == "2000-02-29T00:00:00Z")
        #expect(RFC3339.format(millis: 253_402_300_799_999) == "9999-12-31T23:59:59.999Z")
        #expect(RFC3339.format(millis: -1) == "1969-12-31T23:59:59.999Z")
        // Beyond four digits and before year 0 (never parsed, but formatted all the same).
        #expect(RFC3339.format(millis: 253_402_300_800_000) == "10000-01-01T00:00:00Z")
        #expect(RFC3339.format(millis: -62_167_219_200_000) == "0000-01-01T00:00:00Z")
        #expect(RFC3339.format(millis: -62_198_755_200_000) == "-0001-01-01T00:00:00Z")
    }

    /// From 1600: before the Gregorian reform Foundation counts Julian days, RFC 3339 proleptic Gregorian ones.
    @Test("Formats what Foundation formats, and parses back, over random instants of years 1600-9999")
    func formatsLikeFoundation() throws {
        let foundation = ISO8601DateFormatter()
        foundation.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            // Whole seconds in a quarter of the draws, to cover the form without a fraction.
            var millis = Int64.random(in: -11_676_096_000_000...253_402_300_799_999, using: &generator)
            if Bool.random(using: &generator) && Bool.random(using: &generator) { millis -= millis % 1000 }
            let text = RFC3339.format(millis: millis)
            let withFraction = millis % 1000 == 0 ? text.replacingOccurrences(of: "Z", with: ".000Z") : text
            let date = Date(timeIntervalSince1970: Double(millis) / 1000)
            #expect(withFraction == foundation.string(from: date), "\(millis)")
            #expect(RFC3339.parseMillis(text) == millis, "\(text)")
        }
    }
}

@Suite("Event decoder: member-name fast path")
struct KnownKeyTests {
    @Test("Names that merely start like a contract member are unknown members, not that member")
    func lookalikeNamesAreIgnored() throws {
        let decoys = [
            "types", "type_", "texts", "langs", "users", "brandy", "amounts", "user_idx", "event_idx", "platforms",
            "currencyx", "sentiments", "subject_ids", "occurred_atx", "parent_event_idx", "Type", "event_iD",
        ]
        for decoy in decoys {
            let text = event([decoy: #"{"not":"it"}"#])
            #expect(throws: Never.self, "\(decoy)") { try EventDecoder().decode(text, nowMillis: nil).get() }
        }
        let userDecoys = event(["user": #"{"verifiedx":1,"followerss":"x","created_att":[],"followers":3}"#])
        #expect(try EventDecoder().decode(userDecoys, nowMillis: nil).get().user == Event.User(followers: 3))
    }

    @Test("Every member is found whether or not the fast path applies (short documents end within 16 bytes)")
    func membersNearTheEnd() throws {
        // The last member name sits within 16 bytes of the end, so the scanner's general path reads it.
        let text = #"{"type":"purchase","subject_id":"p","user_id":"u","event_id":"e","occurred_at":0,"amount":1}"#
        let decoded = try EventDecoder().decode(text, nowMillis: nil).get()
        #expect(decoded.amount == 1 && decoded.kind == .purchase && decoded.eventID == "e")
    }
}
