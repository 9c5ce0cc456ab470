/// Strict UTF-8 validation (Unicode 15, table 3-7): no overlong forms, no encoded surrogates, nothing
/// above U+10FFFF, no truncated sequences.
public enum UTF8Validation {
    /// Whether `bytes` is well-formed UTF-8. ASCII runs are checked eight bytes at a time.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return true }
        let count = bytes.count
        var index = 0
        while index < count {
            // Fast path: skip whole words of ASCII.
            while index + 8 <= count {
                let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 != 0 { break }
                index += 8
            }
            guard index < count else { return true }
            let lead = base[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let remaining = count - index
            switch lead {
            case 0xC2...0xDF:
                guard remaining >= 2, isContinuation(base[index + 1]) else { return false }
                index += 2
            case 0xE0...0xEF:
                guard remaining >= 3 else { return false }
                let second = base[index + 1]
                let valid: Bool
                switch lead {
                case 0xE0: valid = (0xA0...0xBF).contains(second)  // no overlongs
                case 0xED: valid = (0x80...0x9F).contains(second)  // no surrogates
                default: valid = isContinuation(second)
                }
                guard valid, isContinuation(base[index + 2]) else { return false }
                index += 3
            case 0xF0...0xF4:
                guard remaining >= 4 else { return false }
                let second = base[index + 1]
                let valid: Bool
                switch lead {
                case 0xF0: valid = (0x90...0xBF).contains(second)  // no overlongs
                case 0xF4: valid = (0x80...0x8F).contains(second)  // nothing above U+10FFFF
                default: valid = isContinuation(second)
                }
                guard valid, isContinuation(base[index + 2]), isContinuation(base[index + 3]) else { return false }
                index += 4
            default:
                return false  // continuation byte as lead, C0/C1 overlongs, F5…FF
            }
        }
        return true
    }

    @inline(__always)
    private static func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }
}
