/// Parses RFC 3339 timestamps (`2026-11-26T10:00:00Z`, `2026-11-26T11:00:00.250+01:00`) to epoch
/// milliseconds, without Foundation and without allocating.
///
/// Accepted: `T`/`t` between date and time (a space too, as RFC 3339 §5.6 allows applications), an
/// optional fraction of any length (truncated to milliseconds), and `Z`/`z` or a `±HH:MM` offset, which is
/// required. A leap second (`:60`) is read as the last millisecond of that minute.
public enum RFC3339 {
    public static func parseMillis(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        let count = bytes.count
        guard count >= 20 else { return nil }
        @inline(__always) func digits(_ start: Int, _ length: Int) -> Int? {
            var value = 0
            for index in start..<(start + length) {
                let digit = Int(bytes[index]) &- 48
                guard digit >= 0 && digit <= 9 else { return nil }
                value = value &* 10 &+ digit
            }
            return value
        }
        guard let year = digits(0, 4), bytes[4] == UInt8(ascii: "-"),
            let month = digits(5, 2), bytes[7] == UInt8(ascii: "-"),
            let day = digits(8, 2),
            bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == UInt8(ascii: " "),
            let hour = digits(11, 2), bytes[13] == UInt8(ascii: ":"),
            let minute = digits(14, 2), bytes[16] == UInt8(ascii: ":"),
            let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year, month), hour <= 23, minute <= 59,
            second <= 60
        else { return nil }
        var index = 19
        var millis = 0
        if index < count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            var scale = 100
            while index < count, bytes[index] >= 48, bytes[index] <= 57 {
                millis += Int(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        guard index < count else { return nil }
        var offsetMinutes = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            guard count - index == 6, let offsetHours = digits(index + 1, 2), bytes[index + 3] == UInt8(ascii: ":"),
                let offsetMins = digits(index + 4, 2), offsetHours <= 23, offsetMins <= 59
            else { return nil }
            offsetMinutes = sign * (offsetHours * 60 + offsetMins)
            index += 6
        default:
            return nil
        }
        guard index == count else { return nil }
        if second == 60 { millis = 999 }
        let days = daysFromCivil(year, month, day)
        let seconds = ((days * 24 + hour) * 60 + minute) * 60 + min(second, 59) - offsetMinutes * 60
        return Int64(seconds) * 1000 + Int64(millis)
    }

    public static func parseMillis(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { parseMillis($0) }
    }

    /// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS[.mmm]Z` (milliseconds only when non-zero).
    public static func format(millis: Int64) -> String {
        String(unsafeUninitializedCapacity: Self.maxFormattedLength) { Self.write(millis: millis, to: $0) }
    }

    /// The longest ``format(millis:)`` text: a sign, nine digits of year (`Int64` milliseconds reach the
    /// year 292 278 994) and `-MM-DDTHH:MM:SS.mmmZ`.
    static let maxFormattedLength = 30

    /// Writes ``format(millis:)``'s text into `buffer` (at least ``maxFormattedLength`` bytes) digit by digit,
    /// and returns its length: metric records write their timestamps straight into their bytes, and the
    /// string form takes one allocation, not one per field. Years have at least four digits, a sign when
    /// negative.
    static func write(millis: Int64, to buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let totalSeconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let ms = Int(millis - totalSeconds * 1000)
        let days = Int(totalSeconds >= 0 ? totalSeconds / 86_400 : (totalSeconds - 86_399) / 86_400)
        let secondsOfDay = Int(totalSeconds - Int64(days) * 86_400)
        let (year, month, day) = civilFromDays(days)
        var yearWidth = 4
        var limit = 10_000
        while abs(year) >= limit {
            yearWidth += 1
            limit *= 10
        }
        var position = 0
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            for _ in 0..<width {
                buffer[position] = UInt8(ascii: "0") + UInt8(value / divisor % 10)
                position += 1
                divisor /= 10
            }
        }
        func byte(_ character: Unicode.Scalar) {
            buffer[position] = UInt8(ascii: character)
            position += 1
        }
        if year < 0 { byte("-") }
        digits(abs(year), yearWidth)
        byte("-")
        digits(month, 2)
        byte("-")
        digits(day, 2)
        byte("T")
        digits(secondsOfDay / 3600, 2)
        byte(":")
        digits(secondsOfDay / 60 % 60, 2)
        byte(":")
        digits(secondsOfDay % 60, 2)
        if ms != 0 {
            byte(".")
            digits(ms, 3)
        }
        byte("Z")
        return position
    }

    static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
