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

    /// The definition: every shingle (three scalars of the normalised text) votes +1 or −1 for each of its
    /// hash's 64 bits, bit by bit; a bit is set where the votes are positive.
    static func reference(_ text: String) -> UInt64 {
        var weights = [Int](repeating: 0, count: 64)
        var normalised: [UInt32] = []
        var previousSpace = true
        for scalar in text.unicodeScalars {
            var value = scalar.value
            if SimHash.isSeparator(value) {
                if previousSpace { continue }
                value = 0x20
                previousSpace = true
            } else {
                previousSpace = false
                if (0x41...0x5A).contains(value) { value += 0x20 }
            }
            normalised.append(value)
        }
        guard normalised.count >= 3 else { return stableHash(text) }
        for start in 0...(normalised.count - 3) {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for value in normalised[start..<start + 3] { hash = (hash ^ UInt64(value)) &* 0x0000_0100_0000_01B3 }
            hash ^= hash >> 29
            hash = hash &* 0xBF58_476D_1CE4_E5B9
            hash ^= hash >> 32
            for bit in 0..<64 { weights[bit] += (hash >> UInt64(bit)) & 1 == 1 ? 1 : -1 }
        }
        var result: UInt64 = 0
        for bit in 0..<64 where weights[bit] > 0 { result |= 1 << UInt64(bit) }
        return result
    }

    @Test("Equals the bit-by-bit vote for texts of every length, past the 255 shingles its counters hold")
    func equalsTheDefinition() {
        var generator = SplitMix64(seed: 7)
        let alphabet = Array("aAbBcdeé  ,.!xyz0123456789ßжЖ中文🙂\u{3000}\u{A0}")
        var texts = ["", "a", "ab", "abc", "a b", "   ", "Do NOT buy from globex!!!"]
        for length in [4, 10, 100, 254, 255, 256, 257, 258, 509, 510, 511, 512, 1000, 3000] {
            for _ in 0..<3 {
                texts.append(String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }))
            }
            // Few distinct shingles: long runs of the same votes, where a lane overflow would show.
            texts.append(String(repeating: "ab", count: length / 2))
        }
        for text in texts {
            #expect(SimHash.of(text) == Self.reference(text), "\(text.count) characters: \(text.prefix(40))")
        }
    }
}
