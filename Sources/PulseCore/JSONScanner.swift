/// A strict RFC 8259 scanner over a byte buffer: it validates syntax and locates values, without building
/// a tree or allocating. The event decoder uses it to find the fields it knows and to check (and skip)
/// everything else.
///
/// Rejected as malformed: anything but exactly one JSON value surrounded by optional whitespace; literals
/// other than `true`, `false`, `null` (so `NaN`, `Infinity`); numbers with leading zeros, a bare `-`, `.5`,
/// `1.`, `1e`; unescaped control characters in strings; unknown escapes; escaped lone surrogates
/// (`\ud800` without a low surrogate after it, or a low one alone); nesting deeper than ``maxDepth``.
/// UTF-8 validity is checked separately, before scanning.
struct JSONScanner {
    /// Nesting limit: the top-level value is depth 1.
    static let maxDepth = 64

    struct SyntaxError: Error {
        var message: String
        var offset: Int
    }

    /// A located value.
    struct Token {
        enum Kind: UInt8 {
            case absent, string, number, bool, null, object, array
        }

        var kind: Kind
        /// Strings: whether the content holds escapes. Booleans: the value.
        var flag: Bool
        private var start32: Int32
        private var end32: Int32

        init(kind: Kind, start: Int, end: Int, flag: Bool) {
            self.kind = kind
            self.flag = flag
            self.start32 = Int32(truncatingIfNeeded: start)
            self.end32 = Int32(truncatingIfNeeded: end)
        }

        /// Strings: the first byte after the opening quote. Others: the first byte of the value.
        var start: Int { Int(self.start32) }
        /// Strings: the index of the closing quote. Others: one past the last byte.
        var end: Int { Int(self.end32) }

        static let absent = Token(kind: .absent, start: 0, end: 0, flag: false)
    }

    let base: UnsafePointer<UInt8>
    let count: Int
    var index = 0

    init(base: UnsafePointer<UInt8>, count: Int) {
        self.base = base
        self.count = count
    }

    @inline(__always)
    func fail(_ message: String) -> SyntaxError {
        SyntaxError(message: message, offset: self.index)
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while self.index < self.count {
            switch self.base[self.index] {
            case 0x20, 0x0A, 0x0D, 0x09: self.index += 1
            default: return
            }
        }
    }

    /// The byte at the cursor, or `nil` at the end.
    @inline(__always)
    var current: UInt8? { self.index < self.count ? self.base[self.index] : nil }

    /// Scans any value at the cursor; containers are validated and skipped.
    mutating func scanValue(depth: Int) throws(SyntaxError) -> Token {
        guard let byte = self.current else { throw self.fail("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "\""):
            return try self.scanString()
        case UInt8(ascii: "{"):
            let start = self.index
            try self.skipObject(depth: depth)
            return Token(kind: .object, start: start, end: self.index, flag: false)
        case UInt8(ascii: "["):
            let start = self.index
            try self.skipArray(depth: depth)
            return Token(kind: .array, start: start, end: self.index, flag: false)
        case UInt8(ascii: "t"):
            try self.expectLiteral("true")
            return Token(kind: .bool, start: self.index - 4, end: self.index, flag: true)
        case UInt8(ascii: "f"):
            try self.expectLiteral("false")
            return Token(kind: .bool, start: self.index - 5, end: self.index, flag: false)
        case UInt8(ascii: "n"):
            try self.expectLiteral("null")
            return Token(kind: .null, start: self.index - 4, end: self.index, flag: false)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try self.scanNumber()
        default:
            throw self.fail("unexpected character")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(SyntaxError) {
        let length = literal.utf8CodeUnitCount
        guard self.count - self.index >= length else { throw self.fail("invalid literal") }
        let expected = literal.utf8Start
        for offset in 0..<length where self.base[self.index + offset] != expected[offset] {
            throw self.fail("invalid literal")
        }
        self.index += length
    }

    /// Validates and skips an object at the cursor (which is on `{`).
    mutating func skipObject(depth: Int) throws(SyntaxError) {
        guard depth <= Self.maxDepth else { throw self.fail("nesting deeper than \(Self.maxDepth)") }
        self.index += 1
        self.skipWhitespace()
        if self.current == UInt8(ascii: "}") {
            self.index += 1
            return
        }
        while true {
            guard self.current == UInt8(ascii: "\"") else { throw self.fail("expected a member name") }
            _ = try self.scanString()
            self.skipWhitespace()
            guard self.current == UInt8(ascii: ":") else { throw self.fail("expected ':'") }
            self.index += 1
            self.skipWhitespace()
            _ = try self.scanValue(depth: depth + 1)
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ","):
                self.index += 1
                self.skipWhitespace()
            case UInt8(ascii: "}"):
                self.index += 1
                return
            default:
                throw self.fail("expected ',' or '}'")
            }
        }
    }

    /// Validates and skips an array at the cursor (which is on `[`).
    mutating func skipArray(depth: Int) throws(SyntaxError) {
        guard depth <= Self.maxDepth else { throw self.fail("nesting deeper than \(Self.maxDepth)") }
        self.index += 1
        self.skipWhitespace()
        if self.current == UInt8(ascii: "]") {
            self.index += 1
            return
        }
        while true {
            _ = try self.scanValue(depth: depth + 1)
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ","):
                self.index += 1
                self.skipWhitespace()
            case UInt8(ascii: "]"):
                self.index += 1
                return
            default:
                throw self.fail("expected ',' or ']'")
            }
        }
    }

    /// Scans a string at the cursor (on its opening quote), validating escapes.
    mutating func scanString() throws(SyntaxError) -> Token {
        self.index += 1
        let start = self.index
        var escaped = false
        while true {
            // Eight bytes at a time: stop at a quote, a backslash or a control character.
            while self.index + 8 <= self.count {
                let word = UnsafeRawPointer(self.base + self.index).loadUnaligned(as: UInt64.self)
                let quotes = word ^ 0x2222_2222_2222_2222
                let backslashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
                let hit =
                    ((quotes &- 0x0101_0101_0101_0101) & ~quotes)
                    | ((backslashes &- 0x0101_0101_0101_0101) & ~backslashes)
                    | ((word &- 0x2020_2020_2020_2020) & ~word)
                let mask = hit & 0x8080_8080_8080_8080
                if mask != 0 {
                    self.index += mask.trailingZeroBitCount / 8
                    break
                }
                self.index += 8
            }
            guard self.index < self.count else { throw self.fail("unterminated string") }
            let byte = self.base[self.index]
            switch byte {
            case UInt8(ascii: "\""):
                let end = self.index
                self.index += 1
                return Token(kind: .string, start: start, end: end, flag: escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                try self.scanEscape()
            case 0..<0x20:
                throw self.fail("control character in string")
            default:
                self.index += 1
            }
        }
    }

    private mutating func scanEscape() throws(SyntaxError) {
        guard self.index + 1 < self.count else { throw self.fail("unterminated escape") }
        switch self.base[self.index + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            self.index += 2
        case UInt8(ascii: "u"):
            guard let unit = self.hex4(at: self.index + 2) else { throw self.fail("invalid \\u escape") }
            self.index += 6
            if (0xDC00...0xDFFF).contains(unit) { throw self.fail("lone low surrogate") }
            if (0xD800...0xDBFF).contains(unit) {
                guard self.index + 1 < self.count, self.base[self.index] == UInt8(ascii: "\\"),
                    self.base[self.index + 1] == UInt8(ascii: "u"), let low = self.hex4(at: self.index + 2),
                    (0xDC00...0xDFFF).contains(low)
                else { throw self.fail("lone high surrogate") }
                self.index += 6
            }
        default:
            throw self.fail("invalid escape")
        }
    }

    /// The value of four hex digits at `position`, or `nil`.
    func hex4(at position: Int) -> UInt32? {
        guard position + 4 <= self.count else { return nil }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = self.base[position + offset]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }

    /// Scans a number per the RFC 8259 grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    @inline(__always)
    mutating func scanNumber() throws(SyntaxError) -> Token {
        let start = self.index
        @inline(__always) func isDigit(_ byte: UInt8?) -> Bool {
            guard let byte else { return false }
            return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
        }
        if self.current == UInt8(ascii: "-") { self.index += 1 }
        guard isDigit(self.current) else { throw self.fail("invalid number") }
        if self.current == UInt8(ascii: "0") {
            self.index += 1
            if isDigit(self.current) { throw self.fail("leading zero in number") }
        } else {
            while isDigit(self.current) { self.index += 1 }
        }
        if self.current == UInt8(ascii: ".") {
            self.index += 1
            guard isDigit(self.current) else { throw self.fail("invalid fraction") }
            while isDigit(self.current) { self.index += 1 }
        }
        if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
            self.index += 1
            if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") { self.index += 1 }
            guard isDigit(self.current) else { throw self.fail("invalid exponent") }
            while isDigit(self.current) { self.index += 1 }
        }
        return Token(kind: .number, start: start, end: self.index, flag: false)
    }
}
