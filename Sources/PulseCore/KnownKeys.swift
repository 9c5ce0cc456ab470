/// Recognises the contract's member names straight from the bytes, with one or two 8-byte comparisons,
/// so that the common case skips the general string scan. Anything else (unknown names, names with
/// escapes, names near the end of the buffer) falls back to the scanner.
///
/// The constants are the names' bytes followed by the closing quote, packed little-endian.
enum KnownKeys {
    @inline(__always)
    private static func load(_ base: UnsafePointer<UInt8>, _ index: Int) -> UInt64 {
        UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
    }

    private static let mask2: UInt64 = 0xFFFF
    private static let mask3: UInt64 = 0xFF_FFFF
    private static let mask4: UInt64 = 0xFFFF_FFFF
    private static let mask5: UInt64 = 0xFF_FFFF_FFFF
    private static let mask6: UInt64 = 0xFFFF_FFFF_FFFF
    private static let mask7: UInt64 = 0xFF_FFFF_FFFF_FFFF

    /// A top-level member name starting at `index` (just after its opening quote): the member and the
    /// length of the name including its closing quote.
    @inline(__always)
    static func top(_ base: UnsafePointer<UInt8>, _ index: Int, _ count: Int) -> (FieldName, Int)? {
        guard index + 16 <= count else { return nil }
        let first = self.load(base, index)
        switch first & self.mask5 {
        case 0x22_6570_7974: return (.type, 5)  // type"
        case 0x22_7478_6574: return (.text, 5)  // text"
        case 0x22_676E_616C: return (.lang, 5)  // lang"
        case 0x22_7265_7375: return (.user, 5)  // user"
        default: break
        }
        if first & self.mask6 == 0x2264_6E61_7262 { return (.brand, 6) }  // brand"
        if first & self.mask7 == 0x22_746E_756F_6D61 { return (.amount, 7) }  // amount"
        let second = self.load(base, index + 8)
        switch first {
        case 0x2264_695F_7265_7375: return (.userID, 8)  // user_id"
        case 0x6469_5F74_6E65_7665 where second & 0xFF == 0x22: return (.eventID, 9)  // event_id"
        case 0x6D72_6F66_7461_6C70 where second & 0xFF == 0x22: return (.platform, 9)  // platform"
        case 0x7963_6E65_7272_7563 where second & 0xFF == 0x22: return (.currency, 9)  // currency"
        case 0x6E65_6D69_746E_6573 where second & self.mask2 == 0x2274: return (.sentiment, 10)  // sentiment"
        case 0x5F74_6365_6A62_7573 where second & self.mask3 == 0x22_6469: return (.subjectID, 11)  // subject_id"
        case 0x6465_7272_7563_636F where second & self.mask4 == 0x2274_615F: return (.occurredAt, 12)  // occurred_at"
        // parent_event_id"
        case 0x655F_746E_6572_6170 where second == 0x2264_695F_746E_6576: return (.parentEventID, 16)
        default: return nil
        }
    }

    /// A member name inside `user`, as ``top(_:_:_:)``.
    @inline(__always)
    static func user(_ base: UnsafePointer<UInt8>, _ index: Int, _ count: Int) -> (FieldName, Int)? {
        guard index + 16 <= count else { return nil }
        let first = self.load(base, index)
        let second = self.load(base, index + 8)
        switch first {
        case 0x6465_6966_6972_6576 where second & 0xFF == 0x22: return (.userVerified, 9)  // verified"
        case 0x7265_776F_6C6C_6F66 where second & self.mask2 == 0x2273: return (.userFollowers, 10)  // followers"
        case 0x5F64_6574_6165_7263 where second & self.mask3 == 0x22_7461: return (.userCreatedAt, 11)  // created_at"
        default: return nil
        }
    }
}
