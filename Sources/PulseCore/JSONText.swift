/// Writes JSON text for output records (RFC 8259 string escaping; control characters as `\u00XX`).
public enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    public static func quote(_ text: String) -> String {
        if Self.isPlain(text) { return "\"" + text + "\"" }
        var result = "\""
        result.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{08}": result += "\\b"
            case "\u{0C}": result += "\\f"
            case "\u{00}"..."\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}":
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// Printable ASCII without quotes or backslashes: a string literal of it needs no escaping.
    static func isPlain(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }
    }

    /// A JSON object from ordered members whose values are already JSON text.
    public static func object(_ members: [(String, String)]) -> String {
        "{" + members.map { "\(self.quote($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }
}

/// JSON text written as UTF-8 bytes, for output records on the hot path (the same text as ``JSONText``).
public struct JSONBytes: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int) {
        self.bytes.reserveCapacity(capacity)
    }

    /// Literal JSON text (punctuation, member names, `null`).
    public mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { self.bytes.append(contentsOf: $0) }
    }

    /// Text that needs no escaping (timestamps, numbers' descriptions).
    public mutating func append(unescaped text: String) {
        self.bytes.append(contentsOf: text.utf8)
    }

    /// `text` as a JSON string literal, quotes included: ``JSONText/quote(_:)``.
    public mutating func append(quoted text: String) {
        if JSONText.isPlain(text) {
            self.bytes.append(0x22)
            self.bytes.append(contentsOf: text.utf8)
            self.bytes.append(0x22)
        } else {
            self.bytes.append(contentsOf: JSONText.quote(text).utf8)
        }
    }

    public mutating func append(_ value: Bool) {
        value ? self.append("true") : self.append("false")
    }

    /// Literal JSON text followed by an integer (a member name and its value).
    public mutating func append(_ text: StaticString, _ value: some BinaryInteger) {
        self.append(text)
        self.append(Int64(value))
    }

    /// An integer in decimal, as `String(value)` writes it.
    public mutating func append(_ value: Int64) {
        if value < 0 { self.bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        // The digits backwards into a buffer on the stack, then one append. Reversing them in place through
        // `bytes[first...]` copied the whole array each time (the slice shared its storage): an allocation
        // and a copy per integer, about twenty per metric record (session 15's allocation profile).
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            self.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    /// Epoch milliseconds as RFC 3339 text (``RFC3339/format(millis:)``), without quotes and without an
    /// intermediate string.
    public mutating func append(timestamp millis: Int64) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: RFC3339.maxFormattedLength) { buffer in
            let count = RFC3339.write(millis: millis, to: buffer)
            self.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[..<count]))
        }
    }
}

/// One output record in `crowdpulse replay`'s line format (design §2.5):
/// `{"topic": …, "key": …, "headers": {…}, "value": …}`.
public struct OutputLine: Sendable, Equatable {
    /// The logical output: `metrics`, `alerts`, `late` or `deadletter`.
    public var topic: String
    public var key: String?
    public var headers: [(name: String, value: String)]
    /// JSON text for metrics and alerts; original bytes for late and dead-letter records.
    public var value: Value

    public enum Value: Sendable, Equatable {
        case json(String)
        case original([UInt8])
    }

    public init(topic: String, key: String?, headers: [(name: String, value: String)], value: Value) {
        self.topic = topic
        self.key = key
        self.headers = headers
        self.value = value
    }

    public static func == (lhs: OutputLine, rhs: OutputLine) -> Bool {
        lhs.topic == rhs.topic && lhs.key == rhs.key && lhs.value == rhs.value
            && lhs.headers.map(\.name) == rhs.headers.map(\.name)
            && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }

    /// The JSON line (without the newline). Original bytes that are not UTF-8 are written in base64 with
    /// `"value_encoding": "base64"`.
    public func render() -> String {
        var members: [(String, String)] = [
            ("topic", JSONText.quote(self.topic)),
            ("key", self.key.map(JSONText.quote) ?? "null"),
            ("headers", JSONText.object(self.headers.map { ($0.name, JSONText.quote($0.value)) })),
        ]
        switch self.value {
        case .json(let text):
            members.append(("value", text))
        case .original(let bytes):
            if let text = bytes.withUnsafeBytes({ UTF8Validation.isValid($0) })
                ? String(decoding: bytes, as: UTF8.self) : nil
            {
                members.append(("value", JSONText.quote(text)))
            } else {
                members.append(("value", JSONText.quote(Base64.encode(bytes))))
                members.append(("value_encoding", JSONText.quote("base64")))
            }
        }
        return JSONText.object(members)
    }
}

/// Standard base64 (RFC 4648 §4, with padding).
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { output.append(self.alphabet[Int(chunk >> UInt32(shift) & 63)]) }
            index += 3
        }
        let remaining = bytes.count - index
        if remaining > 0 {
            var chunk = UInt32(bytes[index]) << 16
            if remaining == 2 { chunk |= UInt32(bytes[index + 1]) << 8 }
            output.append(self.alphabet[Int(chunk >> 18 & 63)])
            output.append(self.alphabet[Int(chunk >> 12 & 63)])
            output.append(remaining == 2 ? self.alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
            output.append(UInt8(ascii: "="))
        }
        return String(decoding: output, as: UTF8.self)
    }
}
