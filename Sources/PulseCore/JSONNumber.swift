/// Converts JSON number text (already validated by ``JSONScanner``) to values.
enum JSONNumber {
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// The exact `Int64` when the text is a plain integer of at most 18 digits; `nil` otherwise.
    @inline(__always)
    static func int64(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int64? {
        var index = start
        let negative = base[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard end - index <= 18 else { return nil }
        var value: Int64 = 0
        while index < end {
            let digit = Int64(base[index]) &- 48
            guard digit >= 0 && digit <= 9 else { return nil }  // fraction or exponent
            value = value &* 10 &+ digit
            index += 1
        }
        return negative ? -value : value
    }

    /// The nearest `Double` (infinite when out of range, as `1e999`).
    ///
    /// Fast path (Clinger): up to 15 significant digits and a power of ten up to 22 convert exactly with one
    /// multiplication or division. Everything else goes through the standard library's correctly rounded
    /// parser.
    static func double(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Double {
        var index = start
        let negative = base[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        var mantissa: UInt64 = 0
        var digits = 0
        var exponent = 0
        var significant = true
        while index < end, base[index] >= 48, base[index] <= 57 {
            if digits < 19 {
                mantissa = mantissa * 10 + UInt64(base[index] - 48)
                if mantissa != 0 { digits += 1 }
            } else {
                exponent += 1
                significant = false
            }
            index += 1
        }
        if index < end, base[index] == UInt8(ascii: ".") {
            index += 1
            while index < end, base[index] >= 48, base[index] <= 57 {
                if digits < 19 {
                    mantissa = mantissa * 10 + UInt64(base[index] - 48)
                    if mantissa != 0 { digits += 1 }
                    exponent -= 1
                } else if base[index] != 48 {
                    significant = false
                }
                index += 1
            }
        }
        if index < end, base[index] == UInt8(ascii: "e") || base[index] == UInt8(ascii: "E") {
            index += 1
            var exponentNegative = false
            if base[index] == UInt8(ascii: "+") || base[index] == UInt8(ascii: "-") {
                exponentNegative = base[index] == UInt8(ascii: "-")
                index += 1
            }
            var explicit = 0
            while index < end {
                if explicit < 100_000 { explicit = explicit * 10 + Int(base[index] - 48) }
                index += 1
            }
            exponent += exponentNegative ? -explicit : explicit
        }
        if significant && digits <= 15 && mantissa < (1 << 53) && abs(exponent) <= 22 {
            let value =
                exponent >= 0
                ? Double(mantissa) * Self.powersOfTen[exponent] : Double(mantissa) / Self.powersOfTen[-exponent]
            return negative ? -value : value
        }
        if mantissa == 0 && significant { return negative ? -0.0 : 0.0 }
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: end - start), as: UTF8.self)
        return Double(text) ?? .nan
    }
}
