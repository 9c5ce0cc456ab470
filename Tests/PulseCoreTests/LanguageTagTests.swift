import Testing

@testable import PulseCore

@Suite("Language tags (BCP 47 in outline)")
struct LanguageTagTests {
    /// The rule stated over split subtags, as a reference for the byte-by-byte check.
    static func reference(_ tag: String) -> Bool {
        let parts = tag.split(separator: "-", omittingEmptySubsequences: false).map { Array($0.utf8) }
        let letter = { (byte: UInt8) in (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }
        let digit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        let primary = parts[0]
        let primaryValid =
            (2...8).contains(primary.count) && primary.allSatisfy(letter)
            || (primary == [UInt8(ascii: "x")] || primary == [UInt8(ascii: "X")]) && parts.count > 1
        return primaryValid
            && parts.dropFirst().allSatisfy { (1...8).contains($0.count) && $0.allSatisfy { letter($0) || digit($0) } }
    }

    @Test("Known tags and near misses")
    func cases() {
        for tag in ["en", "de-CH", "zh-Hant-TW", "sr-Latn-RS", "x-private", "X-a-b", "es-419", "abcdefgh-12345678"] {
            #expect(FieldValidator.isLanguageTag(tag), "\(tag)")
        }
        for tag in [
            "", "e", "x", "x-", "en-", "-en", "en--US", "english language", "abcdefghi", "en-123456789", "e1", "en_US",
            "ü",
        ] {
            #expect(!FieldValidator.isLanguageTag(tag), "\(tag)")
        }
    }

    @Test("Agrees with the rule over split subtags on random strings")
    func agreesWithReference() {
        let alphabet = Array("aAxXzZ09-5_ é")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let tag = String(
                (0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            )
            #expect(FieldValidator.isLanguageTag(tag) == Self.reference(tag), "\(tag)")
        }
    }
}
