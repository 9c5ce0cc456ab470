import Testing

@testable import PulseCore

@Suite("JSON bytes")
struct JSONBytesTests {
    @Test("Integers are written as String writes them, at both ends of the range")
    func integers() {
        var generator = SplitMix64(seed: 3)
        var values: [Int64] = [0, 1, -1, 9, 10, -10, 99, 100, 1_000_000, Int64.max, Int64.min, Int64.min + 1]
        for _ in 0..<1_000 { values.append(Int64(bitPattern: generator.next()) >> (generator.next() % 64)) }
        for value in values {
            var out = JSONBytes(capacity: 0)
            out.append(value)
            #expect(String(decoding: out.bytes, as: UTF8.self) == String(value))
        }
        // After other text, and one after another: each lands at the end, whole.
        var out = JSONBytes(capacity: 0)
        out.append("[")
        for value in values { out.append(value); out.append(",") }
        #expect(String(decoding: out.bytes, as: UTF8.self) == "[" + values.map { "\($0)," }.joined())
    }

    @Test("Timestamps are RFC 3339 text, as RFC3339.format writes them")
    func timestamps() {
        let known: [(Int64, String)] = [
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (253_402_300_800_000, "10000-01-01T00:00:00Z"),
            (-62_135_596_800_001, "0000-12-31T23:59:59.999Z"),
            (-62_167_219_200_001, "-0001-12-31T23:59:59.999Z"),
        ]
        for (millis, text) in known {
            var out = JSONBytes(capacity: 0)
            out.append("\"")
            out.append(timestamp: millis)
            out.append("\"")
            #expect(String(decoding: out.bytes, as: UTF8.self) == "\"\(text)\"")
            #expect(RFC3339.format(millis: millis) == text)
        }
        var generator = SplitMix64(seed: 5)
        for _ in 0..<1_000 {
            // Within ±292 million years (the widest year `format` writes, nine digits) and its last millisecond.
            let millis = Int64(bitPattern: generator.next()) >> 1
            var out = JSONBytes(capacity: 0)
            out.append(timestamp: millis)
            let text = String(decoding: out.bytes, as: UTF8.self)
            #expect(text == RFC3339.format(millis: millis))
            #expect(text.utf8.count <= RFC3339.maxFormattedLength)
            if abs(millis) < 253_402_300_800_000 { #expect(RFC3339.parseMillis(text) == millis) }
        }
    }

    @Test("Quoted strings and numbers are the text JSONText and MetricsRecord.number write")
    func quotedAndNumbers() {
        for text in ["", "plain", "with \"quotes\"", "back\\slash", "tab\tand\nnewline", "\u{1}", "café ☕️", "\u{2028}"]
        {
            var out = JSONBytes(capacity: 0)
            out.append(quoted: text)
            #expect(String(decoding: out.bytes, as: UTF8.self) == JSONText.quote(text))
        }
        for value in [0.0, -0.0, 1.5, 2.0, -3.25, 1e15, 1e16, 0.1234567, 1.0 / 3.0, .nan, .infinity] {
            var out = JSONBytes(capacity: 0)
            MetricsRecord.number(value, into: &out)
            let rounded = (value * 1_000_000).rounded() / 1_000_000
            let expected =
                !value.isFinite
                ? "null"
                : rounded == rounded.rounded() && abs(rounded) < 1e15 ? String(Int64(rounded)) : String(rounded)
            #expect(String(decoding: out.bytes, as: UTF8.self) == expected, "\(value)")
        }
    }
}
