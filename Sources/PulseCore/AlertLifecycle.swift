/// Alert severity, ordered: an excursion's severity only ever rises.
public enum AlertSeverity: String, Sendable, Comparable, CaseIterable {
    case warning, critical

    private var rank: Int { self == .warning ? 0 : 1 }
    public static func < (lhs: AlertSeverity, rhs: AlertSeverity) -> Bool { lhs.rank < rhs.rank }
}

/// The lifecycle of one alert (one entity and alert name), with Prometheus/Alertmanager semantics, on
/// event time (design §5): `pending` while the condition holds for less than `for`; `firing`; `resolved`
/// once the condition has been false for `keep_firing_for`; then a `cooldown` before the same entity can
/// fire again. One firing per excursion; severity escalates in place and never drops within an excursion.
///
/// Evaluated at each detection step: the caller passes the step's event time and the severity the
/// condition reaches (`nil`: the condition does not hold), and performs the returned actions.
public struct AlertLifecycle: Sendable, Equatable {
    public struct Configuration: Sendable, Equatable {
        /// `alerts.for`: how long the condition must hold before firing.
        public var forMillis: Int64
        /// `alerts.keep_firing_for`: how long the condition must be false before resolving.
        public var keepFiringForMillis: Int64
        /// `alerts.cooldown`: after resolving, how long before the entity can go pending again.
        public var cooldownMillis: Int64

        public init(forMillis: Int64 = 60_000, keepFiringForMillis: Int64 = 600_000, cooldownMillis: Int64 = 900_000) {
            self.forMillis = forMillis
            self.keepFiringForMillis = keepFiringForMillis
            self.cooldownMillis = cooldownMillis
        }
    }

    /// What the caller does.
    public enum Action: Sendable, Equatable {
        /// The alert starts firing. `detectedAt` is this evaluation's event time; `startsAt` when the
        /// condition began to hold (the onset of the wave).
        case fire(severity: AlertSeverity, startsAt: Int64, detectedAt: Int64)
        /// The severity rose during the excursion (towards Alertmanager: resolve the old label set, fire
        /// the new one; the fingerprint stays).
        case escalate(from: AlertSeverity, to: AlertSeverity, at: Int64)
        /// The excursion is over.
        case resolve(severity: AlertSeverity, startsAt: Int64, endsAt: Int64)
    }

    public enum State: Sendable, Equatable {
        case inactive
        case pending(since: Int64, severity: AlertSeverity)
        /// `clearSince`: when the condition last stopped holding, while it is still false.
        case firing(startsAt: Int64, severity: AlertSeverity, clearSince: Int64?)
        case cooldown(until: Int64)
    }

    public let configuration: Configuration
    public private(set) var state: State = .inactive

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Evaluates one detection step. Steps must come in event-time order.
    public mutating func evaluate(at time: Int64, breaching severity: AlertSeverity?) -> [Action] {
        switch self.state {
        case .inactive:
            guard let severity else { return [] }
            self.state = .pending(since: time, severity: severity)
            return self.promoteIfDue(at: time)

        case .pending(let since, let reached):
            guard let severity else {
                self.state = .inactive  // the condition did not hold for `for`: no alert
                return []
            }
            self.state = .pending(since: since, severity: max(reached, severity))
            return self.promoteIfDue(at: time)

        case .firing(let startsAt, let current, let clearSince):
            if let severity {
                self.state = .firing(startsAt: startsAt, severity: max(current, severity), clearSince: nil)
                return severity > current ? [.escalate(from: current, to: severity, at: time)] : []
            }
            let cleared = clearSince ?? time
            guard time - cleared >= self.configuration.keepFiringForMillis else {
                self.state = .firing(startsAt: startsAt, severity: current, clearSince: cleared)
                return []
            }
            self.state = .cooldown(until: time + self.configuration.cooldownMillis)
            return [.resolve(severity: current, startsAt: startsAt, endsAt: time)]

        case .cooldown(let until):
            guard time >= until else { return [] }
            self.state = .inactive
            return self.evaluate(at: time, breaching: severity)
        }
    }

    private mutating func promoteIfDue(at time: Int64) -> [Action] {
        guard case .pending(let since, let severity) = self.state else {
            preconditionFailure("promote from \(self.state)")
        }
        guard time - since >= self.configuration.forMillis else { return [] }
        self.state = .firing(startsAt: since, severity: severity, clearSince: nil)
        return [.fire(severity: severity, startsAt: since, detectedAt: time)]
    }

    /// Whether the alert is firing now.
    public var isFiring: Bool {
        if case .firing = self.state { return true }
        return false
    }
}

// MARK: - Binary state

extension AlertSeverity {
    /// The severity as one byte of the binary format.
    var code: UInt8 {
        switch self {
        case .warning: return 0
        case .critical: return 1
        }
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        switch try reader.byte() {
        case 0: self = .warning
        case 1: self = .critical
        case let other: throw reader.error("alert severity \(other)")
        }
    }
}

extension AlertLifecycle {
    /// Appends the lifecycle's state (a tag byte, then that state's fields); the configuration is not written.
    func write(to writer: inout BinaryWriter) {
        switch self.state {
        case .inactive:
            writer.byte(0)
        case .pending(let since, let severity):
            writer.byte(1)
            writer.int(since)
            writer.byte(severity.code)
        case .firing(let startsAt, let severity, let clearSince):
            writer.byte(2)
            writer.int(startsAt)
            writer.byte(severity.code)
            writer.optionalInt(clearSince)
        case .cooldown(let until):
            writer.byte(3)
            writer.int(until)
        }
    }

    /// Reads a lifecycle written by ``write(to:)``, under `configuration`.
    init(reading reader: inout BinaryReader, configuration: Configuration) throws(BinaryDecodingError) {
        self.init(configuration: configuration)
        switch try reader.byte() {
        case 0:
            self.state = .inactive
        case 1:
            self.state = .pending(since: try reader.int64(), severity: try AlertSeverity(reading: &reader))
        case 2:
            self.state = .firing(
                startsAt: try reader.int64(),
                severity: try AlertSeverity(reading: &reader),
                clearSince: try reader.optionalInt64()
            )
        case 3:
            self.state = .cooldown(until: try reader.int64())
        case let other:
            throw reader.error("alert state \(other)")
        }
    }
}
