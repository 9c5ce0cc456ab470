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
