#if canImport(Glibc)
import Glibc
#endif

/// Decodes and validates v1 events: bytes → ``Event`` or a ``Rejection`` naming the first failed check.
///
/// Checks run in a fixed order and the first failure is reported: `oversize` → `invalid_utf8` →
/// `malformed_json` → `bad_type` → `missing_field` → `unknown_type` → `bad_value` → `bad_timestamp` →
/// `future_timestamp` (see `docs/events.md`). The whole document is validated as JSON before any field is
/// judged, so a syntax error anywhere wins over a bad field. Unknown fields are validated as JSON and
/// ignored; with duplicate member names the last one wins; `null` for an optional field means absent;
/// fields that do not apply to the event's type are ignored whatever their value.
public struct EventDecoder: Sendable {
    /// Decoder limits.
    public struct Configuration: Sendable, Equatable {
        /// Largest accepted message, inclusive (`ingest.max_message_bytes`).
        public var maxMessageBytes: Int
        /// How far ahead of the wall clock an event may be (`ingest.max_future_skew`), in milliseconds.
        public var maxFutureSkewMillis: Int64

        public init(maxMessageBytes: Int = 65_536, maxFutureSkewMillis: Int64 = 5 * 60_000) {
            self.maxMessageBytes = maxMessageBytes
            self.maxFutureSkewMillis = maxFutureSkewMillis
        }
    }

    public let configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Field limits of the contract.
    enum Limits {
        static let eventID = 1...128
        static let subjectID = 1...256
        static let userID = 1...256
        static let brand = 1...256
        static let platform = 1...64
        static let text = 1...16_384
        static let lang = 2...35
        static let parentEventID = 1...128
        /// Latest accepted event time: 9999-12-31T23:59:59.999Z.
        static let maxMillis: Int64 = 253_402_300_799_999
        static let maxFollowers: Int64 = 1 << 53
    }

    /// Decodes one message.
    ///
    /// - Parameter nowMillis: the wall clock (epoch ms) for the future-skew check; `nil` in replay, which
    ///   has no wall clock.
    public func decode(_ bytes: UnsafeRawBufferPointer, nowMillis: Int64?) -> Result<Event, Rejection> {
        do throws(Rejection) {
            return .success(try self.decodeEvent(bytes, nowMillis: nowMillis))
        } catch {
            return .failure(error)
        }
    }

    /// Decodes one message, throwing the rejection (the form the pipeline uses: no `Result` to copy).
    public func decodeEvent(_ bytes: UnsafeRawBufferPointer, nowMillis: Int64?) throws(Rejection) -> Event {
        // Offsets are kept as 32-bit integers; the limit is far below that anyway.
        guard bytes.count <= self.configuration.maxMessageBytes, bytes.count < Int(Int32.max) else {
            throw (Rejection(.oversize, "\(bytes.count) bytes, limit \(self.configuration.maxMessageBytes)"))
        }
        guard UTF8Validation.isValid(bytes) else { throw (Rejection(.invalidUTF8, "not valid UTF-8")) }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else {
            throw (Rejection(.malformedJSON, "empty message"))
        }
        if bytes.count >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF {
            throw (Rejection(.malformedJSON, "byte order mark"))
        }
        // The located members live on the stack for the duration of this call: no allocation, no copies.
        return try withUnsafeTemporaryAllocation(of: JSONScanner.Token.self, capacity: FieldName.allCases.count) {
            (storage) throws(Rejection) -> Event in
            var fields = RawFields(storage)
            var scanner = JSONScanner(base: base, count: bytes.count)
            var isObject = false
            do throws(JSONScanner.SyntaxError) {
                scanner.skipWhitespace()
                if scanner.current == UInt8(ascii: "{") {
                    isObject = true
                    try Self.scanTopObject(&scanner, into: &fields)
                } else {
                    _ = try scanner.scanValue(depth: 1)
                }
                scanner.skipWhitespace()
                guard scanner.index == scanner.count else { throw scanner.fail("data after the JSON value") }
            } catch {
                throw Rejection(.malformedJSON, "\(error.message) at byte \(error.offset)")
            }
            guard isObject else { throw (Rejection(.badType, "top-level value is not an object")) }
            return try FieldValidator(base: base, fields: fields, configuration: self.configuration).validate(
                nowMillis: nowMillis
            )
        }
    }

    /// Decodes one message from an array (convenience for tests and tools).
    public func decode(_ bytes: [UInt8], nowMillis: Int64?) -> Result<Event, Rejection> {
        bytes.withUnsafeBytes { self.decode($0, nowMillis: nowMillis) }
    }

    public func decode(_ text: String, nowMillis: Int64?) -> Result<Event, Rejection> {
        self.decode(Array(text.utf8), nowMillis: nowMillis)
    }

    // MARK: - Scanning the top-level object

    // `scanTopObject` and `scanUserObject` are near-copies on purpose: a single recursive function with a
    // level parameter measured ~8% slower in `bench-decode` (the branches no longer specialise).

    private static func scanTopObject(
        _ scanner: inout JSONScanner,
        into fields: inout RawFields
    ) throws(JSONScanner.SyntaxError) {
        scanner.index += 1
        scanner.skipWhitespace()
        if scanner.current == UInt8(ascii: "}") {
            scanner.index += 1
            return
        }
        while true {
            guard scanner.current == UInt8(ascii: "\"") else { throw scanner.fail("expected a member name") }
            let field: FieldName?
            if let (known, length) = KnownKeys.top(scanner.base, scanner.index + 1, scanner.count) {
                field = known
                scanner.index += 1 + length
            } else {
                field = FieldName.top(scanner.base, try scanner.scanString())
            }
            scanner.skipWhitespace()
            guard scanner.current == UInt8(ascii: ":") else { throw scanner.fail("expected ':'") }
            scanner.index += 1
            scanner.skipWhitespace()
            if field == .user && scanner.current == UInt8(ascii: "{") {
                let start = scanner.index
                fields.resetUser()
                try Self.scanUserObject(&scanner, into: &fields)
                fields[.user] = JSONScanner.Token(kind: .object, start: start, end: scanner.index, flag: false)
            } else {
                let value = try scanner.scanValue(depth: 2)
                if let field {
                    fields[field] = value
                    if field == .user { fields.resetUser() }
                }
            }
            scanner.skipWhitespace()
            switch scanner.current {
            case UInt8(ascii: ","):
                scanner.index += 1
                scanner.skipWhitespace()
            case UInt8(ascii: "}"):
                scanner.index += 1
                return
            default:
                throw scanner.fail("expected ',' or '}'")
            }
        }
    }

    private static func scanUserObject(
        _ scanner: inout JSONScanner,
        into fields: inout RawFields
    ) throws(JSONScanner.SyntaxError) {
        scanner.index += 1
        scanner.skipWhitespace()
        if scanner.current == UInt8(ascii: "}") {
            scanner.index += 1
            return
        }
        while true {
            guard scanner.current == UInt8(ascii: "\"") else { throw scanner.fail("expected a member name") }
            let field: FieldName?
            if let (known, length) = KnownKeys.user(scanner.base, scanner.index + 1, scanner.count) {
                field = known
                scanner.index += 1 + length
            } else {
                field = FieldName.user(scanner.base, try scanner.scanString())
            }
            scanner.skipWhitespace()
            guard scanner.current == UInt8(ascii: ":") else { throw scanner.fail("expected ':'") }
            scanner.index += 1
            scanner.skipWhitespace()
            let value = try scanner.scanValue(depth: 3)
            if let field { fields[field] = value }
            scanner.skipWhitespace()
            switch scanner.current {
            case UInt8(ascii: ","):
                scanner.index += 1
                scanner.skipWhitespace()
            case UInt8(ascii: "}"):
                scanner.index += 1
                return
            default:
                throw scanner.fail("expected ',' or '}'")
            }
        }
    }
}

// MARK: - Field names

/// The members the contract knows, top level and inside `user`.
enum FieldName: Int, CaseIterable {
    case eventID, type, occurredAt, subjectID, userID, brand, platform, text, lang, sentiment, parentEventID
    case amount, currency, user
    case userCreatedAt, userFollowers, userVerified

    var jsonName: String {
        switch self {
        case .eventID: return "event_id"
        case .type: return "type"
        case .occurredAt: return "occurred_at"
        case .subjectID: return "subject_id"
        case .userID: return "user_id"
        case .brand: return "brand"
        case .platform: return "platform"
        case .text: return "text"
        case .lang: return "lang"
        case .sentiment: return "sentiment"
        case .parentEventID: return "parent_event_id"
        case .amount: return "amount"
        case .currency: return "currency"
        case .user: return "user"
        case .userCreatedAt: return "user.created_at"
        case .userFollowers: return "user.followers"
        case .userVerified: return "user.verified"
        }
    }

    /// Matches a top-level member name token.
    static func top(_ base: UnsafePointer<UInt8>, _ key: JSONScanner.Token) -> FieldName? {
        Self.match(base, key) { bytes in
            switch bytes.count {
            case 4:
                if equal(bytes, "type") { return .type }
                if equal(bytes, "text") { return .text }
                if equal(bytes, "lang") { return .lang }
                if equal(bytes, "user") { return .user }
            case 5: if equal(bytes, "brand") { return .brand }
            case 6: if equal(bytes, "amount") { return .amount }
            case 7: if equal(bytes, "user_id") { return .userID }
            case 8:
                if equal(bytes, "event_id") { return .eventID }
                if equal(bytes, "platform") { return .platform }
                if equal(bytes, "currency") { return .currency }
            case 9: if equal(bytes, "sentiment") { return .sentiment }
            case 10: if equal(bytes, "subject_id") { return .subjectID }
            case 11: if equal(bytes, "occurred_at") { return .occurredAt }
            case 15: if equal(bytes, "parent_event_id") { return .parentEventID }
            default: break
            }
            return nil
        }
    }

    /// Matches a member name inside `user`.
    static func user(_ base: UnsafePointer<UInt8>, _ key: JSONScanner.Token) -> FieldName? {
        Self.match(base, key) { bytes in
            switch bytes.count {
            case 8: if equal(bytes, "verified") { return .userVerified }
            case 9: if equal(bytes, "followers") { return .userFollowers }
            case 10: if equal(bytes, "created_at") { return .userCreatedAt }
            default: break
            }
            return nil
        }
    }

    /// Runs `body` on the member name's bytes, unescaping first when the name holds escapes (so that
    /// `"\u0074ype"` is `type`, as RFC 8259 says).
    private static func match(
        _ base: UnsafePointer<UInt8>,
        _ key: JSONScanner.Token,
        _ body: (UnsafeBufferPointer<UInt8>) -> FieldName?
    ) -> FieldName? {
        if !key.flag {
            return body(UnsafeBufferPointer(start: base + key.start, count: key.end - key.start))
        }
        let unescaped = JSONString.unescape(base, key.start, key.end)
        return unescaped.withUnsafeBufferPointer(body)
    }

    @inline(__always)
    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
        memcmp(bytes.baseAddress!, name.utf8Start, bytes.count) == 0
    }
}

/// The located value of each known member (the last occurrence wins), in caller-provided (stack) storage,
/// with bit masks (bit n = `FieldName(rawValue: n)`) that let validation find the first problem without
/// looping over the fields.
struct RawFields {
    private let tokens: UnsafeMutableBufferPointer<JSONScanner.Token>
    /// Members that appeared (`null` included).
    private(set) var assigned: UInt32 = 0
    /// Members whose (last) value is `null`.
    private(set) var nulls: UInt32 = 0
    /// Members whose (last) value is neither `null` nor of a JSON type the member takes.
    private(set) var mismatched: UInt32 = 0

    init(_ storage: UnsafeMutableBufferPointer<JSONScanner.Token>) {
        precondition(storage.count >= FieldName.allCases.count && FieldName.allCases.count <= 32)
        storage.initialize(repeating: .absent)
        self.tokens = storage
    }

    subscript(field: FieldName) -> JSONScanner.Token {
        @inline(__always) get { self.tokens[field.rawValue] }
        @inline(__always) set {
            self.tokens[field.rawValue] = newValue
            let bit: UInt32 = 1 << field.rawValue
            self.assigned |= bit
            if newValue.kind == .null { self.nulls |= bit } else { self.nulls &= ~bit }
            if newValue.kind != .null && !field.accepts(newValue.kind) {
                self.mismatched |= bit
            } else {
                self.mismatched &= ~bit
            }
        }
    }

    /// A new `user` member replaces the previous one entirely.
    mutating func resetUser() {
        for field in [FieldName.userCreatedAt, .userFollowers, .userVerified] {
            self.tokens[field.rawValue] = .absent
        }
        let userBits = FieldName.userBits
        self.assigned &= ~userBits
        self.nulls &= ~userBits
        self.mismatched &= ~userBits
    }
}

extension FieldName {
    /// The bit of this member in ``RawFields``' masks.
    var bit: UInt32 { 1 << UInt32(self.rawValue) }

    static let userBits = FieldName.userCreatedAt.bit | FieldName.userFollowers.bit | FieldName.userVerified.bit

    /// Whether a value of JSON type `kind` is the right type for this member.
    @inline(__always)
    func accepts(_ kind: JSONScanner.Token.Kind) -> Bool {
        switch self {
        case .occurredAt: return kind == .string || kind == .number
        case .sentiment, .amount, .userFollowers: return kind == .number
        case .user: return kind == .object
        case .userVerified: return kind == .bool
        case .eventID, .type, .subjectID, .userID, .brand, .platform, .text, .lang, .parentEventID, .currency,
            .userCreatedAt:
            return kind == .string
        }
    }
}

/// Decodes JSON string contents.
enum JSONString {
    /// The UTF-8 bytes of a string's content with escapes resolved (the scanner has validated them).
    static func unescape(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(end - start)
        var index = start
        func hex(_ position: Int) -> UInt32 {
            var value: UInt32 = 0
            for offset in 0..<4 {
                let byte = base[position + offset]
                let digit: UInt32 =
                    byte <= UInt8(ascii: "9")
                    ? UInt32(byte - 48) : UInt32((byte | 0x20) - UInt8(ascii: "a") + 10)
                value = value << 4 | digit
            }
            return value
        }
        while index < end {
            let byte = base[index]
            guard byte == UInt8(ascii: "\\") else {
                result.append(byte)
                index += 1
                continue
            }
            let kind = base[index + 1]
            index += 2
            switch kind {
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "f"): result.append(0x0C)
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex(index)
                index += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = hex(index + 2)
                    index += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                for unit in Unicode.UTF8.encode(Unicode.Scalar(scalar)!)! { result.append(unit) }
            default: result.append(kind)  // " \ /
            }
        }
        return result
    }

    static func string(_ base: UnsafePointer<UInt8>, _ token: JSONScanner.Token) -> String {
        if !token.flag {
            return String(
                decoding: UnsafeBufferPointer(start: base + token.start, count: token.end - token.start),
                as: UTF8.self
            )
        }
        return String(decoding: self.unescape(base, token.start, token.end), as: UTF8.self)
    }
}
