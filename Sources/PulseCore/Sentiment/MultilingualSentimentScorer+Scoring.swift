/// One unit the rules reason about: a matched term, an emoji, or an unmatched word (which still counts
/// for the distance a negation or booster reaches).
struct Item {
    var flags: TermFlags
    var valence: Float
    var boost: Float
    var breakBefore: Bool
    var allCaps: Bool
    var emoji: Bool
    /// From a Chinese or Japanese run: unmatched text between a negator and a term ends the negation's
    /// scope there (不同, 不断 and 没想到 are not negations of what follows).
    var cjk: Bool = false
    /// Where the item's text lies in the scratch buffer (for the terms an alert cites).
    var start: Int32
    var end: Int32
}

extension MultilingualSentimentScorer {
    /// VADER's constants: a negation scales by −0.74, an ALL-CAPS word gains 0.733, boosters fade by
    /// 5% per word of distance, words before a contrast count half and after it 1.5×.
    static let negationScale: Float = -0.74
    static let capsBoost: Float = 0.733
    static let negationScope = 3

    func score(
        tokens: UnsafeMutablePointer<Token>,
        count: Int,
        scratch: UnsafeMutablePointer<UInt8>,
        language: SentimentLanguage?,
        capsDifferential: Bool,
        items: UnsafeMutablePointer<Item>,
        terms: UnsafeMutablePointer<[(String, Double)]>? = nil
    ) -> Double {
        let tables = self.resources.tables
        let latinLanguage = language.flatMap { $0.latinBit != nil ? $0 : nil } ?? .english
        let latin = tables[latinLanguage]!
        // English words count in a code-switched comment, but not the other language's function words
        // that happen to be English words ("die", "hell", "fast" in German).
        let latinStopBit: UInt16 = latinLanguage.latinBit.map { 1 << UInt16($0) } ?? 0
        let english = tables[.english]!
        let cjk = tables[language == .japanese ? .japanese : .chineseSimplified]!
        let korean = tables[.korean]!
        let emoji = self.resources.emoji
        var itemCount = 0

        var itemStart = 0
        var itemEnd = 0

        @inline(__always)
        func emit(_ entry: TermEntry?, breakBefore: Bool, allCaps: Bool = false, isEmoji: Bool = false) {
            items[itemCount] = Item(
                flags: entry?.flags ?? [],
                valence: entry?.valence ?? 0,
                boost: entry?.boost ?? 0,
                breakBefore: breakBefore,
                allCaps: allCaps && entry != nil,
                emoji: isEmoji && entry != nil,
                start: Int32(itemStart),
                end: Int32(itemEnd)
            )
            itemCount += 1
        }

        var index = 0
        while index < count {
            let token = tokens[index]
            let breakBefore = token.flags.contains(.breakBefore)
            let start = Int(token.start)
            let end = Int(token.end)
            switch token.kind {
            case .latin:
                itemStart = start
                itemEnd = end
                if let (entry, used) = Self.matchPhrase(latin, tokens, index, count, scratch)
                    ?? (latinLanguage == .english || self.isFunctionWord(scratch, start, end, latinStopBit)
                        ? nil : Self.matchPhrase(english, tokens, index, count, scratch))
                {
                    itemEnd = Int(tokens[index + used - 1].end)
                    emit(entry, breakBefore: breakBefore, allCaps: token.flags.contains(.allCaps))
                    index += used
                    continue
                }
                if let entry = Self.matchWordVariants(token, scratch, latin, english, emoji) {
                    emit(entry, breakBefore: breakBefore, allCaps: token.flags.contains(.allCaps))
                } else if token.flags.contains(.apostrophe),
                    let apostrophe = (start..<end).first(where: { scratch[$0] == UInt8(ascii: "'") }),
                    apostrophe > start, apostrophe + 1 < end
                {
                    // French elision and English contractions: "n'est" is "n'" + "est".
                    let left = UnsafeBufferPointer(start: scratch + start, count: apostrophe + 1 - start)
                    let right = UnsafeBufferPointer(start: scratch + apostrophe + 1, count: end - apostrophe - 1)
                    itemEnd = apostrophe + 1
                    emit(latin.lookup(left) ?? english.lookup(left), breakBefore: breakBefore)
                    itemStart = apostrophe + 1
                    itemEnd = end
                    emit(latin.lookup(right) ?? english.lookup(right), breakBefore: false)
                } else {
                    emit(nil, breakBefore: breakBefore)
                }
            case .hangul:
                // Korean words are a stem and endings: match the longest stem at the start, keep going
                // only past negators and boosters written together ("너무좋아"), then look for a
                // negation among the endings ("좋지않아").
                var position = start
                var first = true
                while position < end {
                    guard let (entry, length) = Self.longestMatch(korean, scratch, position, end) else {
                        itemStart = position
                        itemEnd = end
                        if first { emit(nil, breakBefore: breakBefore) }
                        break
                    }
                    // A negator or booster glued to the front of a word ("안좋아") counts only when a
                    // sentiment stem follows it: 안녕하세요 and 안내 are not negations.
                    if !entry.flags.contains(.sentiment) && position + length < end {
                        guard let (next, _) = Self.longestMatch(korean, scratch, position + length, end),
                            next.flags.contains(.sentiment) || next.flags.contains(.booster)
                        else {
                            itemStart = position
                            itemEnd = end
                            if first { emit(nil, breakBefore: breakBefore) }
                            break
                        }
                    }
                    itemStart = position
                    itemEnd = position + length
                    emit(entry, breakBefore: first && breakBefore)
                    first = false
                    position += length
                    if entry.flags.contains(.sentiment) {
                        var rest = position
                        while rest < end {
                            if let (after, length) = Self.longestMatch(korean, scratch, rest, end),
                                after.flags.contains(.negatorAfter)
                            {
                                itemStart = rest
                                itemEnd = rest + length
                                emit(after, breakBefore: false)
                                break
                            }
                            rest += Self.scalarWidth(scratch[rest])
                        }
                        break
                    }
                }
            case .cjk:
                let firstItem = itemCount
                defer { for item in firstItem..<itemCount { items[item].cjk = true } }
                var position = start
                var inUnmatched = false
                var first = true
                while position < end {
                    if let (entry, length) = Self.longestMatch(cjk, scratch, position, end) {
                        itemStart = position
                        itemEnd = position + length
                        emit(entry, breakBefore: first && breakBefore)
                        position += length
                        inUnmatched = false
                    } else {
                        itemStart = position
                        itemEnd = position + Self.scalarWidth(scratch[position])
                        if !inUnmatched { emit(nil, breakBefore: first && breakBefore) }
                        inUnmatched = true
                        position += Self.scalarWidth(scratch[position])
                    }
                    first = false
                }
            case .emoji, .emoticon:
                let entry = emoji.lookup(UnsafeBufferPointer(start: scratch + start, count: end - start))
                itemStart = start
                itemEnd = end
                emit(entry, breakBefore: breakBefore, isEmoji: true)
            }
            index += 1
        }
        if let terms {
            var contributions = [Float](repeating: 0, count: itemCount)
            _ = contributions.withUnsafeMutableBufferPointer {
                Self.evaluate(items, itemCount, capsDifferential: capsDifferential, contributions: $0.baseAddress)
            }
            for index in 0..<itemCount where contributions[index] != 0 {
                let item = items[index]
                let bytes = UnsafeBufferPointer(start: scratch + Int(item.start), count: Int(item.end - item.start))
                terms.pointee.append((String(decoding: bytes, as: UTF8.self), Double(contributions[index])))
            }
        }
        guard self.rules else {
            var sum: Float = 0
            for index in 0..<itemCount where items[index].flags.contains(.sentiment) { sum += items[index].valence }
            return Double(sum)
        }
        return Double(Self.evaluate(items, itemCount, capsDifferential: capsDifferential))
    }

    @inline(__always)
    func isFunctionWord(_ scratch: UnsafeMutablePointer<UInt8>, _ start: Int, _ end: Int, _ bit: UInt16) -> Bool {
        guard bit != 0,
            let entry = self.resources.latinIdentification.lookup(
                UnsafeBufferPointer(start: scratch + start, count: end - start)
            )
        else { return false }
        return entry.stopMask & bit != 0
    }

    /// The rule layer over the items.
    static func evaluate(
        _ items: UnsafeMutablePointer<Item>,
        _ count: Int,
        capsDifferential: Bool,
        contributions: UnsafeMutablePointer<Float>? = nil
    ) -> Float {
        var contrast = -1
        for index in 0..<count where items[index].flags.contains(.contrast) {
            contrast = index
            break
        }
        var sum: Float = 0
        for index in 0..<count {
            let item = items[index]
            guard item.flags.contains(.sentiment), item.valence != 0 else { continue }
            var valence = item.valence
            if item.allCaps && capsDifferential { valence += valence > 0 ? Self.capsBoost : -Self.capsBoost }
            if !item.emoji {
                var negated = false
                // Up to three items back, within the clause.
                var distance = 1
                var cursor = index
                while distance <= Self.negationScope && cursor > 0 && !items[cursor].breakBefore {
                    cursor -= 1
                    let previous = items[cursor]
                    if previous.flags.contains(.contrast) { break }
                    if item.cjk && previous.cjk && previous.flags.isEmpty { break }
                    if previous.flags.contains(.booster) {
                        let boost = previous.boost * (1 - 0.05 * Float(distance - 1))
                        valence += valence > 0 ? boost : -boost
                    }
                    if previous.flags.contains(.negator) { negated = true }
                    distance += 1
                }
                // Negations written after the word (Japanese ない, Korean 않다): up to two items on.
                cursor = index + 1
                distance = 1
                while distance <= 2 && cursor < count && !items[cursor].breakBefore {
                    if items[cursor].flags.contains(.negatorAfter) {
                        negated.toggle()
                        break
                    }
                    if items[cursor].flags.contains(.sentiment) { break }
                    cursor += 1
                    distance += 1
                }
                if negated { valence *= Self.negationScale }
            }
            if contrast >= 0 {
                if index < contrast {
                    valence *= 0.5
                } else if index > contrast {
                    valence *= 1.5
                }
            }
            sum += valence
            contributions?[index] = valence
        }
        return sum
    }

    /// The longest term (several words for phrases) starting at token `index`; returns the entry and
    /// the number of tokens it covers.
    @inline(__always)
    static func matchPhrase(
        _ table: TermTable,
        _ tokens: UnsafeMutablePointer<Token>,
        _ index: Int,
        _ count: Int,
        _ scratch: UnsafeMutablePointer<UInt8>
    ) -> (TermEntry, Int)? {
        let start = Int(tokens[index].start)
        var last = index
        var best: (TermEntry, Int)? = nil
        var entry = table.lookup(UnsafeBufferPointer(start: scratch + start, count: Int(tokens[index].end) - start))
        while let found = entry {
            if !found.flags.isDisjoint(with: .anyTerm) { best = (found, last - index + 1) }
            guard found.flags.contains(.prefix), last + 1 < count, tokens[last + 1].kind == .latin,
                !tokens[last + 1].flags.contains(.breakBefore)
            else { break }
            last += 1
            entry = table.lookup(UnsafeBufferPointer(start: scratch + start, count: Int(tokens[last].end) - start))
        }
        return best
    }

    /// A word that did not match as written: without surrounding apostrophes, with stretched letters
    /// squeezed ("goooood" → "good", then "god"... only if listed), or as an emoticon written in
    /// letters ("xD").
    static func matchWordVariants(
        _ token: Token,
        _ scratch: UnsafeMutablePointer<UInt8>,
        _ latin: TermTable,
        _ english: TermTable,
        _ emoji: TermTable
    ) -> TermEntry? {
        var start = Int(token.start)
        var end = Int(token.end)
        while start < end && scratch[start] == UInt8(ascii: "'") { start += 1 }
        while end > start && scratch[end - 1] == UInt8(ascii: "'") { end -= 1 }
        guard end > start else { return nil }
        if start != Int(token.start) || end != Int(token.end) {
            let trimmed = UnsafeBufferPointer(start: scratch + start, count: end - start)
            if let entry = latin.lookup(trimmed) ?? english.lookup(trimmed) { return entry }
        }
        if token.flags.contains(.stretched) && end - start <= 64 {
            var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            let found = withUnsafeMutableBytes(of: &buffer) { raw -> TermEntry? in
                let out = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
                for keep in [2, 1] {
                    var length = 0
                    var run = 0
                    var previous: UInt8 = 0
                    for offset in start..<end {
                        let byte = scratch[offset]
                        run = byte == previous && byte < 0x80 ? run + 1 : 1
                        previous = byte
                        if run <= keep {
                            out[length] = byte
                            length += 1
                        }
                    }
                    let squeezed = UnsafeBufferPointer(start: out, count: length)
                    if let entry = latin.lookup(squeezed) ?? english.lookup(squeezed) { return entry }
                }
                return nil
            }
            if let found { return found }
        }
        return emoji.lookup(UnsafeBufferPointer(start: scratch + start, count: end - start))
    }

    /// The longest term starting at byte `position` and ending by `end`, extended one code point at a
    /// time while the table says a longer key begins here.
    @inline(__always)
    static func longestMatch(
        _ table: TermTable,
        _ scratch: UnsafeMutablePointer<UInt8>,
        _ position: Int,
        _ end: Int
    ) -> (TermEntry, Int)? {
        var length = 0
        var best: (TermEntry, Int)? = nil
        while position + length < end {
            length += Self.scalarWidth(scratch[position + length])
            guard let entry = table.lookup(UnsafeBufferPointer(start: scratch + position, count: length)) else {
                break
            }
            if !entry.flags.isDisjoint(with: .anyTerm) { best = (entry, length) }
            if !entry.flags.contains(.prefix) { break }
        }
        return best
    }

    @inline(__always)
    static func scalarWidth(_ lead: UInt8) -> Int {
        if lead < 0x80 { return 1 }
        if lead < 0xE0 { return 2 }
        if lead < 0xF0 { return 3 }
        return 4
    }
}
