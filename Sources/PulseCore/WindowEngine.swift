/// Tumbling or hopping event-time windows, aligned to the epoch.
public struct WindowSpec: Sendable, Equatable, CustomStringConvertible {
    public var sizeMillis: Int64
    public var stepMillis: Int64

    public static func tumbling(_ sizeMillis: Int64) -> WindowSpec {
        WindowSpec(sizeMillis: sizeMillis, stepMillis: sizeMillis)
    }

    public static func hopping(size: Int64, step: Int64) -> WindowSpec {
        WindowSpec(sizeMillis: size, stepMillis: step)
    }

    public init(sizeMillis: Int64, stepMillis: Int64) {
        precondition(sizeMillis > 0 && stepMillis > 0 && stepMillis <= sizeMillis, "need 0 < step ≤ size")
        self.sizeMillis = sizeMillis
        self.stepMillis = stepMillis
    }

    /// Starts of the windows containing `time`, oldest first.
    public func starts(containing time: Int64) -> [Int64] {
        let last = Deduplicator.floorDiv(time, self.stepMillis) * self.stepMillis
        var starts: [Int64] = []
        var start = last
        while start > time - self.sizeMillis {
            starts.append(start)
            start -= self.stepMillis
        }
        return starts.reversed()
    }

    public var description: String {
        self.sizeMillis == self.stepMillis
            ? "tumbling \(self.sizeMillis) ms" : "hopping \(self.sizeMillis) ms every \(self.stepMillis) ms"
    }
}

/// The windowing engine of one input partition: event-time windows per entity, a watermark, late
/// records, idle close, and the metric records of closed windows (design §3).
///
/// Pure: events and the wall clock (for idle close only) come in, outputs come out. The same engine runs
/// in `crowdpulse run` (per input partition) and `crowdpulse replay` (one partition, no wall clock).
public struct WindowEngine: Sendable {
    /// When records are emitted.
    public enum EmitMode: Sendable, Equatable {
        /// One record per window when it closes (`is_final: true`).
        case final
        /// A new revision of every changed open window each time stream time crosses a multiple of the
        /// interval, then the final record.
        case updates(intervalMillis: Int64)
    }

    /// What happens to brand-level aggregates when a window closes here.
    public enum BrandHandling: Sendable, Equatable {
        /// Emit brand metrics here (replay, or a single input partition).
        case local
        /// Hand brand partials to the caller, which merges them across partitions.
        case partials
    }

    public struct Configuration: Sendable, Equatable {
        public var window: WindowSpec
        public var graceMillis: Int64
        public var idleCloseMillis: Int64
        public var emit: EmitMode
        public var brands: BrandHandling
        public var weights: EngagementWeights
        public var uniqueExactLimit: Int
        public var cascadeCapacity: Int
        /// How long (event time) a subject's cascade memory is kept after its last share.
        public var cascadeTTLMillis: Int64
        /// Most shares remembered for cascades over all subjects of the partition. Past it, the subjects
        /// whose last share is oldest are forgotten first, at the next sweep (once per window step).
        public var cascadeMaxShares: Int

        public init(
            window: WindowSpec = .tumbling(60_000),
            graceMillis: Int64 = 30_000,
            idleCloseMillis: Int64 = 60_000,
            emit: EmitMode = .final,
            brands: BrandHandling = .local,
            weights: EngagementWeights = EngagementWeights(),
            uniqueExactLimit: Int = 1000,
            cascadeCapacity: Int = 4096,
            cascadeTTLMillis: Int64 = 3_600_000,
            cascadeMaxShares: Int = 100_000
        ) {
            self.window = window
            self.graceMillis = graceMillis
            self.idleCloseMillis = idleCloseMillis
            self.emit = emit
            self.brands = brands
            self.weights = weights
            self.uniqueExactLimit = uniqueExactLimit
            self.cascadeCapacity = cascadeCapacity
            self.cascadeTTLMillis = cascadeTTLMillis
            self.cascadeMaxShares = cascadeMaxShares
        }
    }

    /// What the engine asks the caller to do.
    public enum Output: Sendable, Equatable {
        /// Produce a metric record.
        case metrics(MetricsRecord)
        /// The event came after this window closed: send its original bytes to the late topic.
        case late(windowStart: Int64, windowEnd: Int64, latenessMillis: Int64)
        /// This partition's brand aggregate for a window, to merge across partitions: final when the window
        /// closed here, else a cumulative snapshot (updates mode) that replaces the previous one.
        case brandPartial(brand: String, windowStart: Int64, aggregate: WindowAggregate, isFinal: Bool)
    }

    public let configuration: Configuration
    private let scorer: any SentimentScorer
    /// One open window: its entities' aggregates, and the encoding of this version of it for checkpoints.
    struct OpenWindow: Sendable {
        var aggregates: [EntityKey: WindowAggregate] = [:]
        /// Renewed whenever the window changes (an event added, an update emitted). A window past its end
        /// that waits out its grace period takes no more events when they come in order: checkpointed at
        /// every commit until it closes (with a grace of half the window, as by default, such windows hold
        /// about half of the open windows' bytes over time: a full window, for half of each window's span),
        /// it is encoded once and stored once, as a segment.
        var sealed = SealedEncoding()
    }

    /// Open windows by start.
    private var open: [Int64: OpenWindow] = [:]
    private var revisions: [Int64: [EntityKey: Int]] = [:]
    private var dirty: [Int64: Set<EntityKey>] = [:]
    private var previousShares: [EntityKey: (start: Int64, shares: Int)] = [:]
    private var cascades: [String: CascadeTracker] = [:]
    /// Event time of each subject's latest share, to forget idle cascades (bounded memory).
    private var cascadeSeen: [String: Int64] = [:]
    private var lastSweep: Int64?
    private var lastActivityWall: Int64?
    /// Highest event time seen (stream time).
    public private(set) var maxEventTime: Int64?
    /// Windows ending at or before this instant are closed.
    public private(set) var watermark = Int64.min
    public private(set) var lateCount = 0

    public init(
        configuration: Configuration = Configuration(),
        scorer: any SentimentScorer = MultilingualSentimentScorer()
    ) {
        self.configuration = configuration
        self.scorer = scorer
    }

    /// Open entity-windows.
    public var openWindowCount: Int { self.open.values.reduce(0) { $0 + $1.aggregates.count } }

    /// Approximate bytes of state held by open windows and cascades.
    public var stateBytes: Int {
        let windows = self.open.values.reduce(0) { total, window in
            total + window.aggregates.reduce(0) { $0 + 64 + $1.key.entity.utf8.count + $1.value.stateBytes }
        }
        // A remembered share: its id hash and slot in a dictionary (with the table's slack), and its id hash
        // and depth in its ring block.
        return windows + self.cascadeShares * 40
    }

    /// Adds an accepted event; returns what to emit (late notices, and records of windows it closed).
    ///
    /// - Parameter nowWall: the wall clock, for idle close; `nil` in replay.
    public mutating func add(_ event: Event, nowWall: Int64? = nil) -> [Output] {
        if let nowWall { self.lastActivityWall = nowWall }
        let time = event.occurredAt
        var outputs: [Output] = []
        if time > (self.maxEventTime ?? Int64.min) {
            self.maxEventTime = time
            if case .updates(let interval) = self.configuration.emit, let previous = self.streamTimeOfLastUpdate,
                Deduplicator.floorDiv(time, interval) > Deduplicator.floorDiv(previous, interval)
            {
                outputs += self.emitUpdates()
            }
            if self.streamTimeOfLastUpdate == nil || time > self.streamTimeOfLastUpdate! {
                self.streamTimeOfLastUpdate = time
            }
            self.watermark = max(self.watermark, time - self.configuration.graceMillis)
        }

        // The windows containing `time`, oldest first, without building arrays: this runs per event.
        let size = self.configuration.window.sizeMillis
        let step = self.configuration.window.stepMillis
        let last = Deduplicator.floorDiv(time, step) * step
        let first = last - (last - (time - size) - 1) / step * step
        // The newest window ends last: when it is late, so are all the others.
        var userHash: UInt64 = 0
        var depth: Int? = nil
        var sentiment: Double? = nil
        var comment: NegativeComment? = nil
        if last + size > self.watermark {
            userHash = stableHash(event.userID)
            if event.kind == .share {
                if let index = self.cascades.index(forKey: event.subjectID) {
                    depth = self.cascades.values[index].record(shareID: event.eventID, parentID: event.parentEventID)
                } else {
                    var cascade = CascadeTracker(capacity: self.configuration.cascadeCapacity)
                    depth = cascade.record(shareID: event.eventID, parentID: event.parentEventID)
                    self.cascades[event.subjectID] = cascade
                }
                self.cascadeSeen[event.subjectID] = max(self.cascadeSeen[event.subjectID] ?? time, time)
            }
            if event.kind == .comment {
                sentiment = event.sentiment ?? self.scorer.score(event.text ?? "", lang: event.lang)
            }
        }
        let exactLimit = self.configuration.uniqueExactLimit
        let tracksUpdates: Bool
        if case .updates = self.configuration.emit { tracksUpdates = true } else { tracksUpdates = false }
        for start in stride(from: first, through: last, by: Int(step)) {
            if start + size <= self.watermark {
                self.lateCount += 1
                outputs.append(
                    .late(windowStart: start, windowEnd: start + size, latenessMillis: self.watermark - (start + size))
                )
                continue
            }
            // Through indices, not `[key, default: …]`: a default capturing `exactLimit` in a nested access
            // cost a heap-allocated closure context per access, four allocations per event.
            var window = self.open.index(forKey: start)
            if window == nil {
                self.open[start] = OpenWindow()
                window = self.open.index(forKey: start)
            }
            SealedEncoding.renewed(&self.open.values[window!].sealed)
            let subject = EntityKey(.subject, event.subjectID)
            Self.add(
                event,
                to: subject,
                in: &self.open.values[window!].aggregates,
                exactLimit: exactLimit,
                userHash: userHash,
                depth: depth,
                sentiment: sentiment,
                comment: &comment
            )
            if tracksUpdates { self.dirty[start, default: []].insert(subject) }
            if let brand = event.brand {
                let key = EntityKey(.brand, brand)
                Self.add(
                    event,
                    to: key,
                    in: &self.open.values[window!].aggregates,
                    exactLimit: exactLimit,
                    userHash: userHash,
                    depth: depth,
                    sentiment: sentiment,
                    comment: &comment
                )
                if tracksUpdates { self.dirty[start, default: []].insert(key) }
            }
        }
        outputs += self.closeWindows(endingBy: self.watermark)
        return outputs
    }

    private var streamTimeOfLastUpdate: Int64?

    /// Adds `event` to `key`'s aggregate in one window, creating the aggregate if it is the first.
    private static func add(
        _ event: Event,
        to key: EntityKey,
        in windows: inout [EntityKey: WindowAggregate],
        exactLimit: Int,
        userHash: UInt64,
        depth: Int?,
        sentiment: Double?,
        comment: inout NegativeComment?
    ) {
        if let index = windows.index(forKey: key) {
            windows.values[index].add(event, userHash: userHash, depth: depth, sentiment: sentiment, comment: &comment)
        } else {
            var aggregate = WindowAggregate(exactLimit: exactLimit)
            aggregate.add(event, userHash: userHash, depth: depth, sentiment: sentiment, comment: &comment)
            windows[key] = aggregate
        }
    }

    /// Closes every open window if the partition has been silent for `idleClose` of wall-clock time.
    public mutating func idle(nowWall: Int64) -> [Output] {
        guard self.isIdle(nowWall: nowWall) else { return [] }
        return self.closeAll()
    }

    /// Whether ``idle(nowWall:)`` would close windows now: some are open and no event came for the idle
    /// timeout.
    public func isIdle(nowWall: Int64) -> Bool {
        guard let last = self.lastActivityWall else { return false }
        return nowWall - last >= self.configuration.idleCloseMillis && !self.open.isEmpty
    }

    /// Closes every open window (end of replay input, or idle).
    public mutating func closeAll() -> [Output] {
        guard let lastEnd = self.open.keys.max().map({ $0 + self.configuration.window.sizeMillis }) else { return [] }
        // Later events for these windows are late: the watermark moves past them.
        self.watermark = max(self.watermark, lastEnd)
        return self.closeWindows(endingBy: lastEnd)
    }

    private mutating func closeWindows(endingBy limit: Int64) -> [Output] {
        let size = self.configuration.window.sizeMillis
        // Per event: find out without allocating that nothing closes (the common case).
        guard let oldest = self.open.keys.min(), oldest + size <= limit else { return [] }
        let closing = self.open.keys.filter { $0 + size <= limit }.sorted()
        self.sweep(before: limit, oldestClosing: closing[0])
        var outputs: [Output] = []
        for start in closing {
            let windows = self.open.removeValue(forKey: start)?.aggregates ?? [:]
            let revisions = self.revisions.removeValue(forKey: start) ?? [:]
            self.dirty.removeValue(forKey: start)
            for key in windows.keys.sorted() {
                let aggregate = windows[key]!
                if key.level == .brand && self.configuration.brands == .partials {
                    outputs.append(
                        .brandPartial(brand: key.entity, windowStart: start, aggregate: aggregate, isFinal: true)
                    )
                    continue
                }
                outputs.append(
                    .metrics(self.record(key, start, aggregate, isFinal: true, revision: revisions[key] ?? 0))
                )
                self.previousShares[key] = (start, aggregate.shares)
            }
        }
        return outputs
    }

    /// Forgets what no future record can use: previous-window shares older than one step before the
    /// oldest window that can still close, and cascades idle for `cascadeTTL`. Runs at most once per
    /// window step of progress, so its cost is spread thin.
    private mutating func sweep(before limit: Int64, oldestClosing: Int64) {
        let step = self.configuration.window.stepMillis
        if let last = self.lastSweep, limit &- last < step { return }
        self.lastSweep = limit
        let keepFrom = oldestClosing - step
        self.previousShares = self.previousShares.filter { $0.value.start >= keepFrom }
        let cascadeLimit = limit - self.configuration.cascadeTTLMillis
        for (subject, seen) in self.cascadeSeen where seen < cascadeLimit {
            self.cascadeSeen.removeValue(forKey: subject)
            self.cascades.removeValue(forKey: subject)
        }
        // Within the TTL a busy partition could still remember up to `cascadeCapacity` shares for every
        // subject (at 7 500 shares/s that grew by 200 MB in ten minutes): the total is capped too.
        var remembered = self.cascadeShares
        guard remembered > self.configuration.cascadeMaxShares else { return }
        let byLastShare = self.cascadeSeen.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
        for (subject, _) in byLastShare where remembered > self.configuration.cascadeMaxShares {
            remembered -= self.cascades.removeValue(forKey: subject)?.count ?? 0
            self.cascadeSeen.removeValue(forKey: subject)
            self.cascadesForgotten += 1
        }
    }

    /// Shares remembered for cascades, over all subjects.
    public var cascadeShares: Int { self.cascades.values.reduce(0) { $0 + $1.count } }

    /// Subjects whose cascades were forgotten before their TTL because of ``Configuration/cascadeMaxShares``.
    public private(set) var cascadesForgotten = 0

    /// Subjects whose cascades are remembered.
    public var cascadeSubjects: Int { self.cascades.count }

    private mutating func emitUpdates() -> [Output] {
        var outputs: [Output] = []
        for start in self.dirty.keys.sorted() {
            // Its revisions and dirty marks change: they are part of the window's bytes.
            if let window = self.open.index(forKey: start) { SealedEncoding.renewed(&self.open.values[window].sealed) }
            for key in self.dirty[start]!.sorted() {
                guard let aggregate = self.open[start]?.aggregates[key] else { continue }
                if key.level == .brand && self.configuration.brands == .partials {
                    outputs.append(
                        .brandPartial(brand: key.entity, windowStart: start, aggregate: aggregate, isFinal: false)
                    )
                    continue
                }
                let revision = self.revisions[start]?[key] ?? 0
                outputs.append(.metrics(self.record(key, start, aggregate, isFinal: false, revision: revision)))
                self.revisions[start, default: [:]][key] = revision + 1
            }
        }
        self.dirty = [:]
        return outputs
    }

    private func record(_ key: EntityKey, _ start: Int64, _ aggregate: WindowAggregate, isFinal: Bool, revision: Int)
        -> MetricsRecord
    {
        let previous = self.previousShares[key]
        let step = self.configuration.window.stepMillis
        return MetricsRecord(
            key: key,
            windowStart: start,
            windowEnd: start + self.configuration.window.sizeMillis,
            isFinal: isFinal,
            revision: revision,
            aggregate: aggregate,
            previousShares: previous.flatMap { $0.start == start - step ? $0.shares : nil },
            weights: self.configuration.weights
        )
    }
}

// MARK: - Binary state

extension WindowEngine {
    /// 2 since 2026-11-27: cascade shares as id hashes. Version 1 (ids as strings) is still read.
    static let stateVersion: UInt8 = 2

    /// Distinct entities with open windows (for logging restore progress)
    public var openEntityCount: Int {
        var keys = Set<EntityKey>()
        for window in self.open.values { keys.formUnion(window.aggregates.keys) }
        return keys.count
    }

    /// Restarts the idle-close clock at `nowWall`: after a restore, the time the partition spent unowned
    /// is not the stream's silence (the restored state remembers the wall clock of another process).
    public mutating func resumeIdleClock(nowWall: Int64) {
        self.lastActivityWall = nowWall
    }

    /// Appends the engine's state in the binary format (``BinaryWriter``), for checkpoints: stream time,
    /// watermark and counters, the open windows (each entity's aggregate with its revision and whether it
    /// changed since the last update), the previous windows' shares, and the cascades.
    ///
    /// Windows and entities are written in ascending order, so that the same state always gives the same
    /// bytes. Neither the configuration nor the scorer is written.
    public func write(to writer: inout BinaryWriter) {
        writer.byte(Self.stateVersion)
        writer.optionalInt(self.maxEventTime)
        writer.int(self.watermark)
        writer.int(self.lateCount)
        writer.optionalInt(self.streamTimeOfLastUpdate)
        writer.optionalInt(self.lastSweep)
        writer.optionalInt(self.lastActivityWall)

        // Revisions and dirty marks only ever exist for open entity-windows (`emitUpdates` and `add` set
        // them next to `open`, `closeWindows` removes all three together), and a stored revision is at least
        // 1: they are written with the aggregate, 0 meaning none.
        // Entries sorted with their values (no lookup per entry), and revisions and dirty marks looked up only
        // when there are any (`final` emit mode has none): this runs over every open window each checkpoint.
        // Each window through its sealed encoding: one that did not change since the last checkpoint (in its
        // grace period) is not encoded again, and is only named in the changelog.
        writer.varint(UInt64(self.open.count))
        for (start, window) in self.open.sorted(by: { $0.key < $1.key }) {
            writer.int(start)
            writer.sealed(window.sealed) { writer in
                let windows = window.aggregates
                let revisions = self.revisions[start] ?? [:]
                let dirty = self.dirty[start] ?? []
                writer.varint(UInt64(windows.count))
                for index in Self.canonicalOrder(windows, EntityKey.canonicalHash) {
                    let key = windows.keys[index]
                    key.write(to: &writer)
                    writer.varint(UInt64(revisions.isEmpty ? 0 : revisions[key] ?? 0))
                    writer.bool(!dirty.isEmpty && dirty.contains(key))
                    windows.values[index].write(to: &writer)
                }
            }
        }

        writer.varint(UInt64(self.previousShares.count))
        for index in Self.canonicalOrder(self.previousShares, EntityKey.canonicalHash) {
            let (key, previous) = self.previousShares[index]
            key.write(to: &writer)
            writer.int(previous.start)
            writer.int(previous.shares)
        }

        writer.varint(UInt64(self.cascades.count))
        for index in Self.canonicalOrder(self.cascades, stableHash) {
            writer.string(self.cascades.keys[index])
            self.cascades.values[index].write(to: &writer)
        }
        writer.varint(UInt64(self.cascadeSeen.count))
        for index in Self.canonicalOrder(self.cascadeSeen, stableHash) {
            let (subject, seen) = self.cascadeSeen[index]
            writer.string(subject)
            writer.int(seen)
        }
    }

    /// The positions of `dictionary`'s entries in a canonical order, so that equal states give equal bytes
    /// whatever their dictionaries' iteration order: ascending stable (FNV) hash of the key, ties by the key.
    ///
    /// Sorting small (hash, position) pairs instead of the entries by key: the keys are strings, and an
    /// entry can be an aggregate of hundreds of bytes with references to retain at each move (sorting the
    /// entries was two thirds of a checkpoint's encoding).
    static func canonicalOrder<Key: Comparable, Value>(
        _ dictionary: [Key: Value],
        _ hash: (Key) -> UInt64
    ) -> [Dictionary<Key, Value>.Index] {
        var order: [(hash: UInt64, index: Dictionary<Key, Value>.Index)] = []
        order.reserveCapacity(dictionary.count)
        var index = dictionary.startIndex
        while index != dictionary.endIndex {
            order.append((hash(dictionary.keys[index]), index))
            dictionary.formIndex(after: &index)
        }
        order.sort { $0.hash != $1.hash ? $0.hash < $1.hash : dictionary.keys[$0.index] < dictionary.keys[$1.index] }
        return order.map(\.index)
    }

    /// Restores an engine written by ``write(to:)``.
    ///
    /// - Parameters:
    ///   - configuration: the current configuration. The state does not record the one it was written
    ///     under: restore under the same window specification.
    ///   - scorer: scores the comments of events added from now on.
    /// - Throws: ``BinaryDecodingError`` when the bytes are truncated or do not describe a valid state.
    public init(
        reading reader: inout BinaryReader,
        configuration: Configuration,
        scorer: any SentimentScorer
    ) throws(BinaryDecodingError) {
        let version = try reader.byte()
        guard version == 1 || version == Self.stateVersion else {
            throw reader.error("window engine state version \(version), expected \(Self.stateVersion)")
        }
        self.init(configuration: configuration, scorer: scorer)
        self.maxEventTime = try reader.optionalInt64()
        self.watermark = try reader.int64()
        self.lateCount = try reader.counter()
        self.streamTimeOfLastUpdate = try reader.optionalInt64()
        self.lastSweep = try reader.optionalInt64()
        self.lastActivityWall = try reader.optionalInt64()

        let windowCount = try reader.count()
        self.open.reserveCapacity(windowCount)
        for _ in 0..<windowCount {
            let start = try reader.int64()
            let count = try reader.count()
            var windows: [EntityKey: WindowAggregate] = [:]
            windows.reserveCapacity(count)
            var revisions: [EntityKey: Int] = [:]
            var dirty: Set<EntityKey> = []
            for _ in 0..<count {
                let key = try EntityKey(reading: &reader)
                let revision = try reader.varint()
                guard revision <= UInt64(Int.max) else { throw reader.error("revision out of range") }
                if revision > 0 { revisions[key] = Int(revision) }
                if try reader.bool() { dirty.insert(key) }
                guard windows.updateValue(try WindowAggregate(reading: &reader), forKey: key) == nil else {
                    throw reader.error("entity written twice in window \(start)")
                }
            }
            guard self.open.updateValue(OpenWindow(aggregates: windows), forKey: start) == nil else {
                throw reader.error("window \(start) written twice")
            }
            if !revisions.isEmpty { self.revisions[start] = revisions }
            if !dirty.isEmpty { self.dirty[start] = dirty }
        }

        let previousCount = try reader.count()
        self.previousShares.reserveCapacity(previousCount)
        for _ in 0..<previousCount {
            let key = try EntityKey(reading: &reader)
            let previous = (start: try reader.int64(), shares: try reader.int())
            guard self.previousShares.updateValue(previous, forKey: key) == nil else {
                throw reader.error("previous shares written twice")
            }
        }

        let cascadeCount = try reader.count()
        self.cascades.reserveCapacity(cascadeCount)
        for _ in 0..<cascadeCount {
            let subject = try reader.string()
            let cascade = try CascadeTracker(reading: &reader, hashed: version >= 2)
            guard self.cascades.updateValue(cascade, forKey: subject) == nil else {
                throw reader.error("cascade written twice")
            }
        }
        let seenCount = try reader.count()
        self.cascadeSeen.reserveCapacity(seenCount)
        for _ in 0..<seenCount {
            let subject = try reader.string()
            guard self.cascadeSeen.updateValue(try reader.int64(), forKey: subject) == nil else {
                throw reader.error("cascade time written twice")
            }
        }
    }
}

extension MetricsRecord {
    public static func == (lhs: MetricsRecord, rhs: MetricsRecord) -> Bool {
        lhs.render() == rhs.render()
    }
}
