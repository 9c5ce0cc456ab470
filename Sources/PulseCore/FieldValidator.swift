#if canImport(Glibc)
import Glibc
#endif

/// Judges the located members of one event, check category by check category, and builds the ``Event``.
struct FieldValidator {
    let base: UnsafePointer<UInt8>
    let fields: RawFields
    let configuration: EventDecoder.Configuration

    private typealias Kind = JSONScanner.Token.Kind
    private typealias Limits = EventDecoder.Limits

    private static let requiredBits: UInt32 =
        FieldName.eventID.bit | FieldName.type.bit | FieldName.occurredAt.bit | FieldName.subjectID.bit
        | FieldName.userID.bit

    /// The top-level members read for an event of `kind`.
    private static func applicableBits(_ kind: Event.Kind?) -> UInt32 {
        let common = Self.requiredBits | FieldName.brand.bit | FieldName.platform.bit | FieldName.user.bit
        switch kind {
        case .comment: return common | FieldName.text.bit | FieldName.lang.bit | FieldName.sentiment.bit
        case .share: return common | FieldName.parentEventID.bit
        case .purchase: return common | FieldName.amount.bit | FieldName.currency.bit
        case .like, .view, nil: return common
        }
    }

    /// The member of the lowest set bit.
    private static func first(_ mask: UInt32) -> FieldName? {
        mask == 0 ? nil : FieldName(rawValue: mask.trailingZeroBitCount)
    }

    private static func describe(_ kind: Kind) -> String {
        switch kind {
        case .absent: return "absent"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        case .object: return "an object"
        case .array: return "an array"
        }
    }

    /// Members required for an event of `kind` beyond the common ones.
    private static func requiredFor(_ kind: Event.Kind?) -> FieldName? {
        switch kind {
        case .comment: return .text
        case .purchase: return .amount
        case .like, .share, .view, nil: return nil
        }
    }

    /// The event type named by a string token, compared on the bytes (escaped names are decoded first).
    private func eventKind(_ token: JSONScanner.Token) -> Event.Kind? {
        if token.flag { return Event.Kind(name: self.string(.type)) }
        let bytes = UnsafeBufferPointer(start: self.base + token.start, count: token.end - token.start)
        func equals(_ name: StaticString) -> Bool {
            bytes.count == name.utf8CodeUnitCount && memcmp(bytes.baseAddress!, name.utf8Start, bytes.count) == 0
        }
        switch bytes.count {
        case 4:
            if equals("like") { return .like }
            if equals("view") { return .view }
        case 5: if equals("share") { return .share }
        case 7: if equals("comment") { return .comment }
        case 8: if equals("purchase") { return .purchase }
        default: break
        }
        return nil
    }

    private func string(_ field: FieldName) -> String {
        JSONString.string(self.base, self.fields[field])
    }

    /// A present, non-null member.
    private func present(_ field: FieldName) -> Bool {
        let kind = self.fields[field].kind
        return kind != .absent && kind != .null
    }

    func validate(nowMillis: Int64?) throws(Rejection) -> Event {
        let typeToken = self.fields[.type]
        let kind = typeToken.kind == .string ? self.eventKind(typeToken) : nil

        // 1. bad_type: wrong JSON types, and null for a required member. The masks give the first offending
        // member in `FieldName` order (required members first, then the others, then those of `user`).
        let typeRequired = Self.requiredFor(kind)
        let required: UInt32 = Self.requiredBits | (typeRequired?.bit ?? 0)
        if let field = Self.first(self.fields.nulls & required) {
            throw Rejection(.badType, "\(field.jsonName) is null")
        }
        let userIsObject = self.fields[.user].kind == .object
        let applicable = Self.applicableBits(kind) | (userIsObject ? FieldName.userBits : 0)
        if let field = Self.first(self.fields.mismatched & applicable) {
            throw Rejection(.badType, "\(field.jsonName) is \(Self.describe(self.fields[field].kind))")
        }

        // 2. missing_field.
        if let field = Self.first(required & ~self.fields.assigned) {
            throw Rejection(.missingField, "\(field.jsonName) is missing")
        }

        // 3. unknown_type.
        guard let kind else {
            let typeName = typeToken.kind == .string ? self.string(.type) : nil
            throw
                (Rejection(
                    .unknownType,
                    "type \"\(typeName ?? "")\" is not one of like, comment, share, purchase, view"
                ))
        }

        // 4. bad_value: string lengths and shapes, numbers in range.
        func text(_ field: FieldName, _ limits: ClosedRange<Int>) throws(Rejection) -> String? {
            guard self.present(field) else { return nil }
            let value = self.string(field)
            guard limits.contains(value.utf8.count) else {
                throw
                    (Rejection(
                        .badValue,
                        "\(field.jsonName) must be \(limits.lowerBound)–\(limits.upperBound) bytes, got \(value.utf8.count)"
                    ))
            }
            return value
        }
        let eventID: String
        let subjectID: String
        let userID: String
        let brand: String?
        let platform: String?
        var commentText: String? = nil
        var lang: String? = nil
        var parentEventID: String? = nil
        var currency: String? = nil
        eventID = try text(.eventID, Limits.eventID)!
        subjectID = try text(.subjectID, Limits.subjectID)!
        userID = try text(.userID, Limits.userID)!
        brand = try text(.brand, Limits.brand)
        platform = try text(.platform, Limits.platform)
        switch kind {
        case .comment:
            commentText = try text(.text, Limits.text)
            lang = try text(.lang, Limits.lang)
            if let lang, !Self.isLanguageTag(lang) {
                throw Rejection(.badValue, "lang \"\(lang)\" is not a BCP 47 tag")
            }
        case .share:
            parentEventID = try text(.parentEventID, Limits.parentEventID)
        case .purchase:
            currency = try text(.currency, 3...3)
            if let currency, !currency.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
                throw Rejection(.badValue, "currency \"\(currency)\" is not three capital letters")
            }
        case .like, .view:
            break
        }

        var sentiment: Double? = nil
        if kind == .comment, self.present(.sentiment) {
            let value = self.double(.sentiment)
            guard value.isFinite else { throw (Rejection(.badValue, "sentiment is out of range")) }
            guard (-1.0...1.0).contains(value) else {
                throw (Rejection(.badValue, "sentiment \(value) is outside [-1, 1]"))
            }
            sentiment = value
        }
        var amount: Double? = nil
        if kind == .purchase {
            let value = self.double(.amount)
            guard value.isFinite else { throw (Rejection(.badValue, "amount is out of range")) }
            guard value >= 0 else { throw (Rejection(.badValue, "amount \(value) is negative")) }
            amount = value
        }
        var user: Event.User? = nil
        if userIsObject {
            var info = Event.User()
            if self.present(.userFollowers) {
                guard let followers = self.integer(.userFollowers), (0...Limits.maxFollowers).contains(followers) else {
                    throw (Rejection(.badValue, "user.followers must be a whole number ≥ 0"))
                }
                info.followers = followers
            }
            if self.present(.userCreatedAt) {
                guard let created = self.timestamp(.userCreatedAt) else {
                    throw (Rejection(.badValue, "user.created_at is not an RFC 3339 timestamp"))
                }
                info.createdAt = created
            }
            if self.present(.userVerified) { info.verified = self.fields[.userVerified].flag }
            user = info
        }
        let occurredToken = self.fields[.occurredAt]
        if occurredToken.kind == .number,
            JSONNumber.int64(self.base, occurredToken.start, occurredToken.end) == nil,
            !JSONNumber.double(self.base, occurredToken.start, occurredToken.end).isFinite
        {
            throw (Rejection(.badValue, "occurred_at is out of range"))
        }

        // 5. bad_timestamp.
        let occurredAt: Int64
        if occurredToken.kind == .number {
            guard let millis = self.integer(.occurredAt), (0...Limits.maxMillis).contains(millis) else {
                throw (Rejection(.badTimestamp, "occurred_at must be whole epoch milliseconds between 1970 and 9999"))
            }
            occurredAt = millis
        } else {
            guard let millis = self.timestamp(.occurredAt), (0...Limits.maxMillis).contains(millis)
            else {
                throw (Rejection(.badTimestamp, "occurred_at is not an RFC 3339 timestamp with offset"))
            }
            occurredAt = millis
        }

        // 6. future_timestamp (live only).
        if let nowMillis, occurredAt > nowMillis + self.configuration.maxFutureSkewMillis {
            throw (Rejection(.futureTimestamp, "occurred_at is \(occurredAt - nowMillis) ms ahead of the wall clock"))
        }

        return
            (Event(
                eventID: eventID,
                kind: kind,
                occurredAt: occurredAt,
                subjectID: subjectID,
                userID: userID,
                brand: brand,
                platform: platform,
                text: commentText,
                lang: lang,
                sentiment: sentiment,
                parentEventID: parentEventID,
                amount: amount,
                currency: currency,
                user: user
            ))
    }

    /// Parses an RFC 3339 member; escaped text (rare) is decoded first, plain text is read in place.
    private func timestamp(_ field: FieldName) -> Int64? {
        let token = self.fields[field]
        if token.flag {
            return JSONString.unescape(self.base, token.start, token.end).withUnsafeBufferPointer {
                RFC3339.parseMillis($0)
            }
        }
        return RFC3339.parseMillis(UnsafeBufferPointer(start: self.base + token.start, count: token.end - token.start))
    }

    private func double(_ field: FieldName) -> Double {
        let token = self.fields[field]
        return JSONNumber.double(self.base, token.start, token.end)
    }

    /// The member as a whole number, when it is one (`12`, `12.0`, `1.2e1`); `nil` otherwise.
    @inline(__always)
    private func integer(_ field: FieldName) -> Int64? {
        let token = self.fields[field]
        if let exact = JSONNumber.int64(self.base, token.start, token.end) { return exact }
        let value = JSONNumber.double(self.base, token.start, token.end)
        guard value.isFinite, value.rounded(.towardZero) == value, abs(value) < 9.2e18 else { return nil }
        return Int64(value)
    }

    /// RFC 5646 shape: a 2–8 letter primary subtag (or `x` for private use), then subtags of 1–8 letters or
    /// digits, separated by `-`.
    static func isLanguageTag(_ tag: String) -> Bool {
        // Byte by byte, without splitting into an array of subtags: this runs for every comment.
        func isLetter(_ byte: UInt8) -> Bool {
            (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
        }
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        var subtag = 0  // which subtag the bytes are in
        var length = 0  // bytes of it so far
        var privateUse = false  // the primary subtag is the single letter x
        for byte in tag.utf8 {
            if byte == UInt8(ascii: "-") {
                // Another subtag follows: the one ending must be a full primary (2–8 letters) or the private-use
                // x, or a non-empty later subtag.
                guard subtag == 0 ? length >= 2 || privateUse : length >= 1 else { return false }
                subtag += 1
                length = 0
                continue
            }
            if subtag == 0 {
                guard isLetter(byte) else { return false }
                privateUse = length == 0 && (byte | 0x20) == UInt8(ascii: "x")
            } else {
                guard isLetter(byte) || isDigit(byte) else { return false }
            }
            length += 1
            guard length <= 8 else { return false }
        }
        // The last subtag: a primary alone needs 2–8 letters (a lone x needs subtags after it).
        return subtag == 0 ? length >= 2 : length >= 1
    }
}
