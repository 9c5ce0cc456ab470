import Testing

@testable import PulseCore

@Suite("SimHash")
struct SimHashTests {
    @Test("The separator test equals the Unicode definition for every scalar")
    func separators() {
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let expected =
                scalar.properties.isWhitespace
                || (value < 0x80 && !scalar.properties.isAlphabetic && !(0x30...0x39).contains(value))
            #expect(SimHash.isSeparator(value) == expected, "U+\(String(value, radix: 16))")
            if SimHash.isSeparator(value) != expected { return }
        }
    }

    @Test("Near-duplicates are close, different texts far")
    func distances() {
        let a = SimHash.of("Do NOT buy from globex, they are scammers and stole my money!!!")
        let b = SimHash.of("do not buy from Globex they are scammers and stole my money")
        let c = SimHash.of("Arrived early, works great, the staff were so helpful with sizing")
        #expect(SimHash.distance(a, b) <= 6)
        #expect(SimHash.distance(a, c) > 12)
    }
}
