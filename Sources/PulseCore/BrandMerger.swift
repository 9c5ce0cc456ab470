/// The brand stage: merges the brand partials that the per-partition engines emit when their windows
/// close, and closes a brand window when every active source partition's watermark has passed its end
/// (the minimum, as Flink does across inputs). A source that reports itself idle stops holding the
/// minimum back until it speaks again. Pure, like ``WindowEngine``.
public struct BrandMerger: Sendable {
    public let configuration: WindowEngine.Configuration
    /// Open brand windows: each source's latest (cumulative) aggregate, merged when a record is emitted.
    private var open: [Int64: [String: [Int32: WindowAggregate]]] = [:]
    private var revisions: [Int64: [String: Int]] = [:]
    private var sources: [Int32: (watermark: Int64, idle: Bool)] = [:]
    private var previousShares: [String: (start: Int64, shares: Int)] = [:]
    /// Closed through this instant: partials for windows ending at or before it arrive too late.
    public private(set) var closedThrough = Int64.min
    /// Partials that arrived after their brand window closed (merged nowhere, counted).
    public private(set) var latePartials = 0

    /// - Parameter sources: every input partition that can send partials; one not heard from yet holds
    ///   the brand windows back (until the caller marks it idle).
    public init(configuration: WindowEngine.Configuration, sources: [Int32] = []) {
        self.configuration = configuration
        for source in sources { self.sources[source] = (Int64.min, false) }
    }

    /// Sources not marked idle.
    public var activeSources: [Int32] { self.sources.filter { !$0.value.idle }.keys.sorted() }

    /// Sources that have announced a watermark: after a restore, they are known to have traffic (they
    /// announce their own idleness), unlike sources never heard from.
    public var announcedSources: [Int32] { self.sources.filter { $0.value.watermark > Int64.min }.keys.sorted() }

    /// Stops a silent source from holding brand windows back (it becomes active again when it speaks).
    public mutating func markIdle(source: Int32) -> [MetricsRecord] {
        let watermark = self.sources[source]?.watermark ?? Int64.min
        return self.advance(source: source, watermark: watermark, idle: true)
    }

    public var openWindowCount: Int { self.open.values.reduce(0) { $0 + $1.count } }

    /// Records one partition's aggregate for a brand window (replacing its earlier snapshot). A snapshot
    /// (`isFinal: false`, updates mode) returns a new revision of the brand's record.
    @discardableResult
    public mutating func add(
        brand: String,
        windowStart: Int64,
        aggregate: WindowAggregate,
        source: Int32,
        isFinal: Bool = true
    ) -> [MetricsRecord] {
        guard windowStart + self.configuration.window.sizeMillis > self.closedThrough else {
            self.latePartials += 1
            return []
        }
        self.open[windowStart, default: [:]][brand, default: [:]][source] = aggregate
        guard !isFinal, case .updates = self.configuration.emit else { return [] }
        let revision = self.revisions[windowStart]?[brand] ?? 0
        self.revisions[windowStart, default: [:]][brand] = revision + 1
        return [self.record(brand, windowStart, self.merged(windowStart, brand), isFinal: false, revision: revision)]
    }

    private func merged(_ start: Int64, _ brand: String) -> WindowAggregate {
        var total = WindowAggregate(exactLimit: self.configuration.uniqueExactLimit)
        for source in (self.open[start]?[brand] ?? [:]).keys.sorted() {
            total.merge(self.open[start]![brand]![source]!)
        }
        return total
    }

    private func record(_ brand: String, _ start: Int64, _ aggregate: WindowAggregate, isFinal: Bool, revision: Int)
        -> MetricsRecord
    {
        let previous = self.previousShares[brand]
        return MetricsRecord(
            key: EntityKey(.brand, brand),
            windowStart: start,
            windowEnd: start + self.configuration.window.sizeMillis,
            isFinal: isFinal,
            revision: revision,
            aggregate: aggregate,
            previousShares: previous.flatMap {
                $0.start == start - self.configuration.window.stepMillis ? $0.shares : nil
            },
            weights: self.configuration.weights
        )
    }

    /// Records a source partition's watermark; returns the brand records of windows that closed.
    public mutating func advance(source: Int32, watermark: Int64, idle: Bool = false) -> [MetricsRecord] {
        let previous = self.sources[source]?.watermark ?? Int64.min
        self.sources[source] = (max(previous, watermark), idle)
        let active = self.sources.values.filter { !$0.idle }.map(\.watermark)
        // With every source idle, the furthest watermark is final for all of them.
        let limit = active.min() ?? self.sources.values.map(\.watermark).max() ?? Int64.min
        return self.close(endingBy: limit)
    }

    /// Closes every open brand window (end of input).
    public mutating func closeAll() -> [MetricsRecord] {
        guard let last = self.open.keys.max() else { return [] }
        return self.close(endingBy: last + self.configuration.window.sizeMillis)
    }

    private mutating func close(endingBy limit: Int64) -> [MetricsRecord] {
        let size = self.configuration.window.sizeMillis
        var records: [MetricsRecord] = []
        for start in self.open.keys.filter({ $0 + size <= limit }).sorted() {
            for brand in self.open[start]!.keys.sorted() {
                let aggregate = self.merged(start, brand)
                let revision = self.revisions[start]?[brand] ?? 0
                records.append(self.record(brand, start, aggregate, isFinal: true, revision: revision))
                self.previousShares[brand] = (start, aggregate.shares)
            }
            self.open.removeValue(forKey: start)
            self.revisions.removeValue(forKey: start)
            self.closedThrough = max(self.closedThrough, start + size)
        }
        // Only the window just before a future one is ever looked up: forget older ones.
        if !records.isEmpty {
            // Windows still to close start at or after closedThrough − size + step.
            let keepFrom = self.closedThrough - size
            self.previousShares = self.previousShares.filter { $0.value.start >= keepFrom }
        }
        return records
    }
}

// MARK: - Binary state

extension BrandMerger {
    static let stateVersion: UInt8 = 1

    /// Appends the merger's state in the binary format (``BinaryWriter``), for checkpoints: what is closed,
    /// the sources' watermarks, each open brand window's partials per source, revisions and the previous
    /// windows' shares. Keys are written in ascending order, so that the same state always gives the same
    /// bytes. The configuration is not written.
    public func write(to writer: inout BinaryWriter) {
        writer.byte(Self.stateVersion)
        writer.int(self.closedThrough)
        writer.int(self.latePartials)

        writer.varint(UInt64(self.sources.count))
        for source in self.sources.keys.sorted() {
            let state = self.sources[source] ?? (Int64.min, false)
            writer.int(Int64(source))
            writer.int(state.watermark)
            writer.bool(state.idle)
        }

        writer.varint(UInt64(self.open.count))
        for start in self.open.keys.sorted() {
            let brands = self.open[start, default: [:]]
            writer.int(start)
            writer.varint(UInt64(brands.count))
            for brand in brands.keys.sorted() {
                let partials = brands[brand, default: [:]]
                writer.string(brand)
                writer.varint(UInt64(partials.count))
                for source in partials.keys.sorted() {
                    writer.int(Int64(source))
                    partials[source]?.write(to: &writer)
                }
            }
        }

        writer.varint(UInt64(self.revisions.count))
        for start in self.revisions.keys.sorted() {
            let brands = self.revisions[start, default: [:]]
            writer.int(start)
            writer.varint(UInt64(brands.count))
            for brand in brands.keys.sorted() {
                writer.string(brand)
                writer.int(brands[brand] ?? 0)
            }
        }

        writer.varint(UInt64(self.previousShares.count))
        for brand in self.previousShares.keys.sorted() {
            let previous = self.previousShares[brand] ?? (0, 0)
            writer.string(brand)
            writer.int(previous.start)
            writer.int(previous.shares)
        }
    }

    /// Restores a merger written by ``write(to:)``.
    ///
    /// - Parameter configuration: the current configuration; restore under the same window specification.
    /// - Throws: ``BinaryDecodingError`` when the bytes are truncated or do not describe a valid state.
    public init(
        reading reader: inout BinaryReader,
        configuration: WindowEngine.Configuration
    ) throws(BinaryDecodingError) {
        try reader.version(Self.stateVersion, of: "brand merger")
        self.init(configuration: configuration)
        self.closedThrough = try reader.int64()
        self.latePartials = try reader.counter()

        for _ in 0..<(try reader.count()) {
            let source = try Self.source(&reader)
            let state = (watermark: try reader.int64(), idle: try reader.bool())
            guard self.sources.updateValue(state, forKey: source) == nil else {
                throw reader.error("source \(source) written twice")
            }
        }

        for _ in 0..<(try reader.count()) {
            let start = try reader.int64()
            var brands: [String: [Int32: WindowAggregate]] = [:]
            for _ in 0..<(try reader.count()) {
                let brand = try reader.string()
                var partials: [Int32: WindowAggregate] = [:]
                for _ in 0..<(try reader.count()) {
                    let source = try Self.source(&reader)
                    guard partials.updateValue(try WindowAggregate(reading: &reader), forKey: source) == nil else {
                        throw reader.error("partial of source \(source) written twice")
                    }
                }
                guard brands.updateValue(partials, forKey: brand) == nil else {
                    throw reader.error("brand written twice in window \(start)")
                }
            }
            guard self.open.updateValue(brands, forKey: start) == nil else {
                throw reader.error("window \(start) written twice")
            }
        }

        for _ in 0..<(try reader.count()) {
            let start = try reader.int64()
            var brands: [String: Int] = [:]
            for _ in 0..<(try reader.count()) {
                let brand = try reader.string()
                guard brands.updateValue(try reader.counter(), forKey: brand) == nil else {
                    throw reader.error("revision written twice in window \(start)")
                }
            }
            guard self.revisions.updateValue(brands, forKey: start) == nil else {
                throw reader.error("revisions of window \(start) written twice")
            }
        }

        for _ in 0..<(try reader.count()) {
            let brand = try reader.string()
            let previous = (start: try reader.int64(), shares: try reader.int())
            guard self.previousShares.updateValue(previous, forKey: brand) == nil else {
                throw reader.error("previous shares written twice")
            }
        }
    }

    private static func source(_ reader: inout BinaryReader) throws(BinaryDecodingError) -> Int32 {
        guard let source = Int32(exactly: try reader.int64()) else { throw reader.error("source out of range") }
        return source
    }
}
