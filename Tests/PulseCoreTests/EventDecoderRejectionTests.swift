import PulseCore
import Testing

/// One input the decoder must reject, and the reason it must give.
struct RejectCase: CustomTestStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]
    var reason: Rejection.Reason

    init(_ name: String, _ text: String, _ reason: Rejection.Reason) {
        self.name = name
        self.bytes = Array(text.utf8)
        self.reason = reason
    }

    init(_ name: String, bytes: [UInt8], _ reason: Rejection.Reason) {
        self.name = name
        self.bytes = bytes
        self.reason = reason
    }

    var testDescription: String { "\(self.name) → \(self.reason.rawValue)" }
}

/// A valid like, with `fields` replacing or adding members (rendered in order; `nil` removes one).
func event(_ overrides: KeyValuePairs<String, String?> = [:], base: [(String, String)] = baseMembers) -> String {
    var members = base
    for (key, value) in overrides {
        if let index = members.firstIndex(where: { $0.0 == key }) {
            if let value { members[index].1 = value } else { members.remove(at: index) }
        } else if let value {
            members.append((key, value))
        }
    }
    return "{" + members.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}

let baseMembers: [(String, String)] = [
    ("event_id", #""e-1""#), ("type", #""like""#), ("occurred_at", #""2026-11-26T10:00:00Z""#),
    ("subject_id", #""post-1""#), ("user_id", #""u-1""#),
]
let nowMillis: Int64 = 1_795_687_200_000  // 2026-11-26T10:00:00Z

let rejectCases: [RejectCase] = {
    var cases: [RejectCase] = []
    func add(_ name: String, _ text: String, _ reason: Rejection.Reason) {
        cases.append(RejectCase(name, text, reason))
    }
    func addBytes(_ name: String, _ bytes: [UInt8], _ reason: Rejection.Reason) {
        cases.append(RejectCase(name, bytes: bytes, reason))
    }
    let valid = event()

    // oversize (limit 65 536 inclusive; checked before anything else)
    add("65 537 bytes", "{" + String(repeating: " ", count: 65_535) + "}", .oversize)
    addBytes("10 MB of zeros", [UInt8](repeating: 0, count: 10_000_000), .oversize)
    addBytes("oversize and invalid UTF-8", [UInt8](repeating: 0xFF, count: 70_000), .oversize)

    // invalid_utf8
    addBytes("lone continuation byte", Array(#"{"event_id":"a"#.utf8) + [0x80] + Array(#""}"#.utf8), .invalidUTF8)
    addBytes("0xFF byte", [0x7B, 0xFF, 0x7D], .invalidUTF8)
    addBytes("overlong slash C0 AF", Array(#"{"a":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8), .invalidUTF8)
    addBytes("overlong E0 80 80", [0x22, 0xE0, 0x80, 0x80, 0x22], .invalidUTF8)
    addBytes("encoded surrogate ED A0 80", [0x22, 0xED, 0xA0, 0x80, 0x22], .invalidUTF8)
    addBytes("above U+10FFFF F4 90 80 80", [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], .invalidUTF8)
    addBytes("truncated two-byte sequence at end", Array(valid.utf8) + [0xC3], .invalidUTF8)
    addBytes("truncated three-byte sequence", [0x22, 0xE2, 0x82, 0x22], .invalidUTF8)
    addBytes("F5 lead byte", [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], .invalidUTF8)
    addBytes("Latin-1 é in a value", Array(#"{"event_id":"caf"#.utf8) + [0xE9] + Array(#""}"#.utf8), .invalidUTF8)
    addBytes("UTF-16 LE BOM", [0xFF, 0xFE, 0x7B, 0x00, 0x7D, 0x00], .invalidUTF8)

    // malformed_json
    add("empty message", "", .malformedJSON)
    add("only whitespace", "  \n\t ", .malformedJSON)
    addBytes("UTF-8 byte order mark", [0xEF, 0xBB, 0xBF] + Array(valid.utf8), .malformedJSON)
    add("truncated after opening brace", "{", .malformedJSON)
    add("truncated in a member name", #"{"event_"#, .malformedJSON)
    add("truncated in a value", String(valid.dropLast(5)), .malformedJSON)
    add("missing closing brace", String(valid.dropLast()), .malformedJSON)
    add("trailing garbage", valid + "x", .malformedJSON)
    add("two objects", valid + valid, .malformedJSON)
    add("trailing comma in object", String(valid.dropLast()) + ",}", .malformedJSON)
    add("trailing comma in array", event(["tags": "[1,2,]"]), .malformedJSON)
    add("missing colon", #"{"event_id" "e-1"}"#, .malformedJSON)
    add("missing comma", #"{"event_id":"e-1" "type":"like"}"#, .malformedJSON)
    add("single-quoted string", #"{'event_id':'e-1'}"#, .malformedJSON)
    add("unquoted member name", #"{event_id:"e-1"}"#, .malformedJSON)
    add("NaN", event(["sentiment": "NaN", "type": #""comment""#, "text": #""x""#]), .malformedJSON)
    add("Infinity", event(["amount": "Infinity"]), .malformedJSON)
    add("-Infinity", event(["x": "-Infinity"]), .malformedJSON)
    add("leading zero", event(["occurred_at": "01795687200000"]), .malformedJSON)
    add("leading plus", event(["occurred_at": "+1795687200000"]), .malformedJSON)
    add("bare minus", event(["x": "-"]), .malformedJSON)
    add("fraction without digits", event(["x": "1."]), .malformedJSON)
    add("fraction without integer", event(["x": ".5"]), .malformedJSON)
    add("exponent without digits", event(["x": "1e"]), .malformedJSON)
    add("exponent sign only", event(["x": "1e+"]), .malformedJSON)
    add("hex number", event(["x": "0x10"]), .malformedJSON)
    add("True capitalised", event(["x": "True"]), .malformedJSON)
    add("nul literal", event(["x": "nul"]), .malformedJSON)
    add("undefined", event(["x": "undefined"]), .malformedJSON)
    add("raw newline in string", event(["event_id": "\"e\n1\""]), .malformedJSON)
    add("raw tab in string", event(["event_id": "\"e\t1\""]), .malformedJSON)
    addBytes("raw NUL in string", Array(#"{"event_id":"e"#.utf8) + [0] + Array(#""}"#.utf8), .malformedJSON)
    add("invalid escape \\x", event(["event_id": #""e\x41""#]), .malformedJSON)
    add("invalid escape \\u12", event(["event_id": #""\u12""#]), .malformedJSON)
    add("non-hex \\u escape", event(["event_id": #""\uZZZZ""#]), .malformedJSON)
    add("lone high surrogate", event(["event_id": #""\ud800""#]), .malformedJSON)
    add("lone high surrogate then text", event(["event_id": #""\ud83dabc""#]), .malformedJSON)
    add("lone low surrogate", event(["event_id": #""\udc00""#]), .malformedJSON)
    add("high surrogate then non-surrogate escape", event(["event_id": #""\ud83d\u0041""#]), .malformedJSON)
    add("reversed surrogate pair", event(["event_id": #""\ude00\ud83d""#]), .malformedJSON)
    add("lone surrogate in a member name", #"{"\ud800":1}"#, .malformedJSON)
    add("lone surrogate in an unknown nested field", event(["meta": #"{"a":["\udfff"]}"#]), .malformedJSON)
    add(
        "nesting 65 deep",
        event(["deep": String(repeating: "[", count: 64) + String(repeating: "]", count: 64)]),
        .malformedJSON
    )
    add("nesting 1000 deep", String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000), .malformedJSON)
    add("unterminated string at end", #"{"event_id":"e-1"#, .malformedJSON)
    add("comment in JSON", "/* c */" + valid, .malformedJSON)
    add("syntax error after a bad type", #"{"event_id":5,"type":"like""#, .malformedJSON)
    add("array never closed", event(["tags": "[1,2"]), .malformedJSON)
    add("object as member name", #"{{}:1}"#, .malformedJSON)
    add("garbage after whitespace", valid + "  \n  ]", .malformedJSON)

    // bad_type
    add("top-level array", "[" + valid + "]", .badType)
    add("top-level string", #""hello""#, .badType)
    add("top-level number", "42", .badType)
    add("top-level null", "null", .badType)
    add("top-level true", "true", .badType)
    add("event_id is a number", event(["event_id": "1"]), .badType)
    add("event_id is null", event(["event_id": "null"]), .badType)
    add("type is null", event(["type": "null"]), .badType)
    add("type is an array", event(["type": #"["like"]"#]), .badType)
    add("occurred_at is a boolean", event(["occurred_at": "true"]), .badType)
    add("occurred_at is null", event(["occurred_at": "null"]), .badType)
    add("occurred_at is an object", event(["occurred_at": "{}"]), .badType)
    add("subject_id is an object", event(["subject_id": #"{"id":"p"}"#]), .badType)
    add("subject_id is null", event(["subject_id": "null"]), .badType)
    add("user_id is a boolean", event(["user_id": "false"]), .badType)
    add("brand is a number", event(["brand": "7"]), .badType)
    add("platform is an array", event(["platform": "[]"]), .badType)
    add("user is a string", event(["user": #""u""#]), .badType)
    add("user.followers is a string", event(["user": #"{"followers":"12"}"#]), .badType)
    add("user.verified is a string", event(["user": #"{"verified":"yes"}"#]), .badType)
    add("user.created_at is a number", event(["user": #"{"created_at":1}"#]), .badType)
    add("comment text is a number", event(["type": #""comment""#, "text": "5"]), .badType)
    add("comment text is null", event(["type": #""comment""#, "text": "null"]), .badType)
    add(
        "comment sentiment is a string",
        event(["type": #""comment""#, "text": #""ok""#, "sentiment": #""0.5""#]),
        .badType
    )
    add("share parent_event_id is a number", event(["type": #""share""#, "parent_event_id": "9"]), .badType)
    add("purchase amount is a string", event(["type": #""purchase""#, "amount": #""9.99""#]), .badType)
    add("purchase amount is null", event(["type": #""purchase""#, "amount": "null"]), .badType)
    add("purchase currency is a number", event(["type": #""purchase""#, "amount": "1", "currency": "840"]), .badType)
    add("bad type wins over missing field", event(["event_id": "1", "user_id": nil]), .badType)
    add("bad type wins over unknown type", event(["type": #""poke""#, "brand": "1"]), .badType)
    add("duplicate key: last one has the wrong type", String(valid.dropLast()) + #","event_id":3}"#, .badType)

    // missing_field
    add("event_id missing", event(["event_id": nil]), .missingField)
    add("type missing", event(["type": nil]), .missingField)
    add("occurred_at missing", event(["occurred_at": nil]), .missingField)
    add("subject_id missing", event(["subject_id": nil]), .missingField)
    add("user_id missing", event(["user_id": nil]), .missingField)
    add("empty object", "{}", .missingField)
    add("comment without text", event(["type": #""comment""#]), .missingField)
    add("purchase without amount", event(["type": #""purchase""#, "currency": #""USD""#]), .missingField)
    add("member name differs in case", event(["event_id": nil, "Event_ID": #""e""#]), .missingField)
    add("missing field wins over unknown type", event(["type": #""poke""#, "user_id": nil]), .missingField)

    // unknown_type
    add("type poke", event(["type": #""poke""#]), .unknownType)
    add("type in capitals", event(["type": #""LIKE""#]), .unknownType)
    add("type empty", event(["type": #""""#]), .unknownType)
    add("type with trailing space", event(["type": #""like ""#]), .unknownType)
    add("type plural", event(["type": #""likes""#]), .unknownType)
    add("unknown type wins over bad value", event(["type": #""poke""#, "event_id": #""""#]), .unknownType)

    // bad_value
    add("event_id empty", event(["event_id": #""""#]), .badValue)
    add("event_id 129 bytes", event(["event_id": "\"\(String(repeating: "e", count: 129))\""]), .badValue)
    add("subject_id empty", event(["subject_id": #""""#]), .badValue)
    add("subject_id 257 bytes", event(["subject_id": "\"\(String(repeating: "s", count: 257))\""]), .badValue)
    add("user_id empty", event(["user_id": #""""#]), .badValue)
    add("brand empty", event(["brand": #""""#]), .badValue)
    add("platform 65 bytes", event(["platform": "\"\(String(repeating: "p", count: 65))\""]), .badValue)
    add("comment text empty", event(["type": #""comment""#, "text": #""""#]), .badValue)
    add(
        "comment text over 16 KiB",
        event(["type": #""comment""#, "text": "\"\(String(repeating: "t", count: 16_385))\""]),
        .badValue
    )
    add("lang not a tag", event(["type": #""comment""#, "text": #""hi""#, "lang": #""english language""#]), .badValue)
    add("lang with empty subtag", event(["type": #""comment""#, "text": #""hi""#, "lang": #""en--US""#]), .badValue)
    add("sentiment above 1", event(["type": #""comment""#, "text": #""hi""#, "sentiment": "1.5"]), .badValue)
    add("sentiment below -1", event(["type": #""comment""#, "text": #""hi""#, "sentiment": "-1.0001"]), .badValue)
    add("sentiment 1e999", event(["type": #""comment""#, "text": #""hi""#, "sentiment": "1e999"]), .badValue)
    add("negative amount", event(["type": #""purchase""#, "amount": "-0.01"]), .badValue)
    add("amount 1e999", event(["type": #""purchase""#, "amount": "1e999"]), .badValue)
    add("amount -1e999", event(["type": #""purchase""#, "amount": "-1e999"]), .badValue)
    add("currency lower case", event(["type": #""purchase""#, "amount": "1", "currency": #""usd""#]), .badValue)
    add("currency four letters", event(["type": #""purchase""#, "amount": "1", "currency": #""USDT""#]), .badValue)
    add("currency empty", event(["type": #""purchase""#, "amount": "1", "currency": #""""#]), .badValue)
    add("currency digits", event(["type": #""purchase""#, "amount": "1", "currency": #""840""#]), .badValue)
    add("followers negative", event(["user": #"{"followers":-1}"#]), .badValue)
    add("followers fractional", event(["user": #"{"followers":1.5}"#]), .badValue)
    add("followers 1e999", event(["user": #"{"followers":1e999}"#]), .badValue)
    add("followers above 2^53", event(["user": #"{"followers":9007199254740993}"#]), .badValue)
    add("user.created_at unparseable", event(["user": #"{"created_at":"yesterday"}"#]), .badValue)
    add("occurred_at 1e999", event(["occurred_at": "1e999"]), .badValue)
    add("bad value wins over bad timestamp", event(["occurred_at": #""soon""#, "event_id": #""""#]), .badValue)

    // bad_timestamp
    add("occurred_at words", event(["occurred_at": #""yesterday""#]), .badTimestamp)
    add("occurred_at without offset", event(["occurred_at": #""2026-11-26T10:00:00""#]), .badTimestamp)
    add("occurred_at date only", event(["occurred_at": #""2026-11-26""#]), .badTimestamp)
    add("occurred_at month 13", event(["occurred_at": #""2026-13-01T00:00:00Z""#]), .badTimestamp)
    add("occurred_at February 30", event(["occurred_at": #""2026-02-30T00:00:00Z""#]), .badTimestamp)
    add("occurred_at February 29 in a common year", event(["occurred_at": #""2025-02-29T00:00:00Z""#]), .badTimestamp)
    add("occurred_at hour 24", event(["occurred_at": #""2026-11-26T24:00:00Z""#]), .badTimestamp)
    add("occurred_at offset without colon", event(["occurred_at": #""2026-11-26T10:00:00+0100""#]), .badTimestamp)
    add("occurred_at trailing text", event(["occurred_at": #""2026-11-26T10:00:00Zx""#]), .badTimestamp)
    add("occurred_at empty fraction", event(["occurred_at": #""2026-11-26T10:00:00.Z""#]), .badTimestamp)
    add("occurred_at negative millis", event(["occurred_at": "-1"]), .badTimestamp)
    add("occurred_at fractional millis", event(["occurred_at": "1795687200000.5"]), .badTimestamp)
    add("occurred_at after year 9999", event(["occurred_at": "253402300800000"]), .badTimestamp)
    add("occurred_at before 1970", event(["occurred_at": #""1969-12-31T23:59:59Z""#]), .badTimestamp)
    add("occurred_at empty string", event(["occurred_at": #""""#]), .badTimestamp)

    // future_timestamp (5 minutes of skew allowed)
    add("occurred_at 5 min 1 ms ahead", event(["occurred_at": "\(nowMillis + 300_001)"]), .futureTimestamp)
    add("occurred_at one day ahead", event(["occurred_at": #""2026-11-27T10:00:00Z""#]), .futureTimestamp)
    add("occurred_at ahead via offset", event(["occurred_at": #""2026-11-26T12:00:00+01:00""#]), .futureTimestamp)
    return cases
}()

@Suite("Event decoder: rejections")
struct EventDecoderRejectionTests {
    @Test("Each malformed or invalid input is rejected with the first failing check's reason", arguments: rejectCases)
    func rejectsWithReason(_ testCase: RejectCase) {
        let result = EventDecoder().decode(testCase.bytes, nowMillis: nowMillis)
        switch result {
        case .success(let event):
            Issue.record("accepted \(event)")
        case .failure(let rejection):
            #expect(rejection.reason == testCase.reason, "\(rejection)")
            #expect(!rejection.detail.isEmpty)
        }
    }

    @Test("The table covers every reason and has at least 100 cases")
    func tableCoversEveryReason() {
        #expect(rejectCases.count >= 100)
        #expect(Set(rejectCases.map(\.reason)) == Set(Rejection.Reason.allCases))
    }

    @Test("The base event of the table is itself valid")
    func baseEventIsValid() throws {
        let decoded = try EventDecoder().decode(event(), nowMillis: nowMillis).get()
        #expect(decoded.eventID == "e-1" && decoded.kind == .like && decoded.occurredAt == nowMillis)
    }

    @Test("The size limit is inclusive")
    func sizeLimitIsInclusive() throws {
        let decoder = EventDecoder(configuration: .init(maxMessageBytes: 200))
        let padded = { (size: Int) -> String in
            let text = event()
            return text.dropLast() + String(repeating: " ", count: size - text.utf8.count) + "}"
        }
        #expect(throws: Never.self) { try decoder.decode(padded(200), nowMillis: nil).get() }
        #expect(decoder.decode(padded(201), nowMillis: nil) == .failure(Rejection(.oversize, "201 bytes, limit 200")))
    }

    @Test("Replay has no wall clock, so far-future events pass")
    func replaySkipsFutureCheck() throws {
        let text = event(["occurred_at": #""2030-01-01T00:00:00Z""#])
        #expect(throws: Never.self) { try EventDecoder().decode(text, nowMillis: nil).get() }
        #expect(throws: Rejection.self) { try EventDecoder().decode(text, nowMillis: nowMillis).get() }
    }
}
