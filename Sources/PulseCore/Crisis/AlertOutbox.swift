/// What is owed to the HTTP receivers of alerts, and when (design §5): the delivery schedule on the wall
/// clock, kept apart from the I/O so that it can be tested exactly. The daemon's `AlertDelivery` asks
/// ``due(now:)`` for requests, performs them, and reports each outcome with ``complete(_:outcome:now:)``.
///
/// - **Alertmanager** (`POST {base}/api/v2/alerts`, one target per base URL, as for an HA pair): each request
///   carries every alert the target is owed — firing ones with `endsAt = now + 2 × resend interval`,
///   resolved ones with their resolution time. A target is sent to at once after a change and every
///   `resend interval` while anything is firing. A resolved alert is re-sent for `resolvedResendFor` and
///   in any case until each target has acknowledged it, so an outage longer than that loses nothing.
///   An escalation resolves the old label set (severity is a label, so Alertmanager sees two alerts) and
///   fires the new one.
/// - **Webhook** (Alertmanager's webhook v4 payload, one notification per alert): every state change is
///   queued and delivered in order; while an alert fires, a re-send is queued every resend interval
///   (only one at a time per alert, so an outage does not pile them up). At most `maxQueued`
///   notifications wait; past that the oldest re-send, else the oldest notification, is dropped and
///   counted in ``dropped``.
///
/// A failed request is retried after a backoff that doubles from 500 ms up to `maxBackoff`; a rejected one
/// (4xx other than 408 and 429: the receiver will never take it) is not retried, and is counted.
public struct AlertOutbox: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Number of Alertmanager targets (base URLs).
        public var alertmanagers: Int
        public var webhook: Bool
        public var resendIntervalMillis: Int64
        public var resolvedResendMillis: Int64
        public var maxBackoffMillis: Int64
        public var maxQueued: Int
        /// `externalURL` of webhook notifications.
        public var externalURL: String
        /// `receiver` of webhook notifications.
        public var receiver: String

        public init(
            alertmanagers: Int = 0,
            webhook: Bool = false,
            resendIntervalMillis: Int64 = 60_000,
            resolvedResendMillis: Int64 = 300_000,
            maxBackoffMillis: Int64 = 60_000,
            maxQueued: Int = 10_000,
            externalURL: String = "crowdpulse://",
            receiver: String = "crowdpulse"
        ) {
            self.alertmanagers = alertmanagers
            self.webhook = webhook
            self.resendIntervalMillis = resendIntervalMillis
            self.resolvedResendMillis = resolvedResendMillis
            self.maxBackoffMillis = maxBackoffMillis
            self.maxQueued = maxQueued
            self.externalURL = externalURL
            self.receiver = receiver
        }
    }

    public enum Receiver: Sendable, Hashable {
        case alertmanager(Int)
        case webhook
    }

    /// One HTTP request to make: a JSON `body` to POST to `receiver`.
    public struct Request: Sendable {
        public var id: Int
        public var receiver: Receiver
        public var body: String
        /// Alerts (Alertmanager) in the body, and the version of each that it carries.
        var versions: [(key: String, version: Int)]
        /// Webhook: the alert and change notified, for logs.
        public var summary: String
    }

    public enum Outcome: Sendable, Equatable {
        case delivered
        /// Try again later (connection refused, timeout, 5xx, 408, 429).
        case retry
        /// The receiver refused the payload for good (other 4xx).
        case rejected
    }

    /// An alert as Alertmanager knows it: one label set.
    struct Entry: Sendable {
        var fingerprint: String
        var labels: [(String, String)]
        var annotations: [(String, String)]
        var startsAt: Int64
        var generatorURL: String
        /// Event time it resolved at, and when (wall clock) it was marked resolved.
        var resolvedAt: Int64?
        var resolvedWall: Int64?
        var version: Int
        /// Targets that have not acknowledged this version yet.
        var unacknowledged: Set<Int>
    }

    struct Target: Sendable {
        var inFlight: Int?
        var dirty = false
        var lastSent = Int64.min
        var nextAttempt = Int64.min
        var backoff: Int64 = 0
    }

    struct Notification: Sendable {
        var fingerprint: String
        var isResend: Bool
        var body: String
        var summary: String
    }

    public let configuration: Configuration
    /// Alertmanager entries by fingerprint and severity.
    private var entries: [String: Entry] = [:]
    private var targets: [Target]
    private var webhook = Target()
    private var queue: [Notification] = []
    /// Firing alerts and when a webhook notification about each was last queued.
    private var webhookFiring: [String: (record: AlertRecord, lastQueued: Int64)] = [:]
    private var nextID = 0
    private var version = 0
    public private(set) var dropped = 0
    public private(set) var rejected = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.targets = Array(repeating: Target(), count: configuration.alertmanagers)
    }

    /// Notifications waiting for the webhook, and Alertmanager alerts kept for delivery.
    public var queued: (webhook: Int, alertmanager: Int) { (self.queue.count, self.entries.count) }

    private static func key(_ fingerprint: String, _ severity: AlertSeverity) -> String {
        "\(fingerprint)|\(severity.rawValue)"
    }

    /// Takes one alert state change (as produced to the alerts topic).
    public mutating func submit(_ record: AlertRecord, now: Int64) {
        let event = record.event
        if self.configuration.alertmanagers > 0 {
            switch event.change {
            case .firing:
                self.upsert(record, severity: event.severity, resolvedAt: nil, now: now)
            case .escalated:
                if let previous = event.previousSeverity,
                    var old = self.entries[Self.key(record.fingerprint, previous)], old.resolvedAt == nil
                {
                    old.resolvedAt = event.at
                    old.resolvedWall = now
                    self.touch(&old)
                    self.entries[Self.key(record.fingerprint, previous)] = old
                }
                self.upsert(record, severity: event.severity, resolvedAt: nil, now: now)
            case .resolved:
                self.upsert(record, severity: event.severity, resolvedAt: event.at, now: now)
            }
        }
        if self.configuration.webhook {
            self.enqueue(
                Notification(
                    fingerprint: record.fingerprint,
                    isResend: false,
                    body: self.webhookBody(record),
                    summary: "\(event.change.rawValue) \(event.alertname) \(event.level.rawValue) \(event.entity)"
                )
            )
            if event.change == .resolved {
                self.webhookFiring[record.fingerprint] = nil
            } else {
                self.webhookFiring[record.fingerprint] = (record, now)
            }
        }
    }

    private mutating func upsert(_ record: AlertRecord, severity: AlertSeverity, resolvedAt: Int64?, now: Int64) {
        var labels = record.labels
        for index in labels.indices where labels[index].0 == "severity" { labels[index].1 = severity.rawValue }
        var entry = Entry(
            fingerprint: record.fingerprint,
            labels: labels,
            annotations: record.annotations,
            startsAt: record.event.startsAt,
            generatorURL: record.generatorURL,
            resolvedAt: resolvedAt,
            resolvedWall: resolvedAt == nil ? nil : now,
            version: 0,
            unacknowledged: []
        )
        self.touch(&entry)
        self.entries[Self.key(record.fingerprint, severity)] = entry
    }

    private mutating func touch(_ entry: inout Entry) {
        self.version += 1
        entry.version = self.version
        entry.unacknowledged = Set(0..<self.configuration.alertmanagers)
        for index in self.targets.indices { self.targets[index].dirty = true }
    }

    private mutating func enqueue(_ notification: Notification) {
        self.queue.append(notification)
        guard self.queue.count > self.configuration.maxQueued else { return }
        // Never drop the request in flight (the head while the webhook is busy).
        let first = self.webhook.inFlight == nil ? 0 : 1
        let victim = self.queue[first...].firstIndex { $0.isResend } ?? first
        self.queue.remove(at: victim)
        self.dropped += 1
    }

    /// The requests to make now. Each receiver has at most one request in flight.
    public mutating func due(now: Int64) -> [Request] {
        self.collect(now: now)
        var requests: [Request] = []
        let resend = self.configuration.resendIntervalMillis
        for index in self.targets.indices {
            let target = self.targets[index]
            guard target.inFlight == nil, now >= target.nextAttempt, !self.entries.isEmpty else { continue }
            // Firing alerts, and resolved ones for `resolvedResendFor`, are re-sent every interval.
            let owed = self.entries.values.contains { $0.unacknowledged.contains(index) }
            guard target.dirty || owed || now - target.lastSent >= resend else { continue }
            let ordered = self.entries.sorted { $0.key < $1.key }
            let alerts = ordered.map { _, entry in
                let endsAt =
                    entry.resolvedAt.map { max(entry.startsAt, min($0, now)) } ?? now + 2 * resend
                return AlertmanagerPayload.alert(
                    labels: entry.labels,
                    annotations: entry.annotations,
                    startsAt: entry.startsAt,
                    endsAt: endsAt,
                    generatorURL: entry.generatorURL
                )
            }
            self.nextID += 1
            self.targets[index].inFlight = self.nextID
            self.targets[index].dirty = false
            requests.append(
                Request(
                    id: self.nextID,
                    receiver: .alertmanager(index),
                    body: "[" + alerts.joined(separator: ",") + "]",
                    versions: ordered.map { ($0.key, $0.value.version) },
                    summary: "\(alerts.count) alerts"
                )
            )
        }
        if self.configuration.webhook {
            for (fingerprint, firing) in self.webhookFiring.sorted(by: { $0.key < $1.key })
            where now - firing.lastQueued >= resend && !self.queue.contains(where: { $0.fingerprint == fingerprint }) {
                let event = firing.record.event
                self.enqueue(
                    Notification(
                        fingerprint: fingerprint,
                        isResend: true,
                        body: self.webhookBody(firing.record),
                        summary: "re-send \(event.alertname) \(event.level.rawValue) \(event.entity)"
                    )
                )
                self.webhookFiring[fingerprint]?.lastQueued = now
            }
            if self.webhook.inFlight == nil, now >= self.webhook.nextAttempt, let head = self.queue.first {
                self.nextID += 1
                self.webhook.inFlight = self.nextID
                requests.append(
                    Request(id: self.nextID, receiver: .webhook, body: head.body, versions: [], summary: head.summary)
                )
            }
        }
        return requests
    }

    /// Records the outcome of a request returned by ``due(now:)``.
    public mutating func complete(_ request: Request, outcome: Outcome, now: Int64) {
        func settle(_ target: inout Target) {
            target.inFlight = nil
            switch outcome {
            case .delivered, .rejected:
                target.backoff = 0
                target.nextAttempt = Int64.min
                target.lastSent = now
            case .retry:
                target.backoff = min(self.configuration.maxBackoffMillis, max(500, target.backoff * 2))
                target.nextAttempt = now + target.backoff
            }
        }
        if outcome == .rejected { self.rejected += 1 }
        switch request.receiver {
        case .alertmanager(let index):
            guard self.targets.indices.contains(index), self.targets[index].inFlight == request.id else { return }
            settle(&self.targets[index])
            guard outcome != .retry else { return }
            for (key, version) in request.versions where self.entries[key]?.version == version {
                self.entries[key]?.unacknowledged.remove(index)
            }
        case .webhook:
            guard self.webhook.inFlight == request.id else { return }
            settle(&self.webhook)
            if outcome != .retry && !self.queue.isEmpty { self.queue.removeFirst() }
        }
        self.collect(now: now)
    }

    /// The wall-clock time at which ``due(now:)`` may next have something (a resend or a retry), if any.
    public func nextWakeup(now: Int64) -> Int64? {
        var times: [Int64] = []
        let resend = self.configuration.resendIntervalMillis
        for (index, target) in self.targets.enumerated() where target.inFlight == nil && !self.entries.isEmpty {
            let owed = target.dirty || self.entries.values.contains { $0.unacknowledged.contains(index) }
            times.append(owed ? max(now, target.nextAttempt) : max(target.nextAttempt, target.lastSent &+ resend))
        }
        if self.webhook.inFlight == nil && !self.queue.isEmpty { times.append(max(now, self.webhook.nextAttempt)) }
        for firing in self.webhookFiring.values { times.append(firing.lastQueued + resend) }
        for entry in self.entries.values {
            if let resolved = entry.resolvedWall { times.append(resolved + self.configuration.resolvedResendMillis) }
        }
        return times.min()
    }

    /// Forgets resolved alerts that every target has acknowledged and that are past the resolved re-send.
    private mutating func collect(now: Int64) {
        let keep = self.configuration.resolvedResendMillis
        self.entries = self.entries.filter { _, entry in
            guard let resolved = entry.resolvedWall else { return true }
            return !entry.unacknowledged.isEmpty || now < resolved + keep
        }
    }

    private func webhookBody(_ record: AlertRecord) -> String {
        AlertmanagerPayload.webhook(
            record,
            receiver: self.configuration.receiver,
            externalURL: self.configuration.externalURL
        )
    }
}

/// Alertmanager's JSON shapes: the v2 API's postable alert and the webhook v4 notification.
public enum AlertmanagerPayload {
    /// The zero time Alertmanager puts in `endsAt` of a firing alert in webhook notifications.
    public static let zeroTime = "0001-01-01T00:00:00Z"

    /// A JSON object of string members (labels, annotations).
    static func strings(_ members: [(String, String)]) -> String {
        JSONText.object(members.map { ($0.0, JSONText.quote($0.1)) })
    }

    /// One element of `POST /api/v2/alerts` (a list of them).
    public static func alert(
        labels: [(String, String)],
        annotations: [(String, String)],
        startsAt: Int64,
        endsAt: Int64,
        generatorURL: String
    ) -> String {
        JSONText.object([
            ("labels", Self.strings(labels)),
            ("annotations", Self.strings(annotations)),
            ("startsAt", JSONText.quote(RFC3339.format(millis: startsAt))),
            ("endsAt", JSONText.quote(RFC3339.format(millis: endsAt))),
            ("generatorURL", JSONText.quote(generatorURL)),
        ])
    }

    /// A webhook v4 notification about one alert (a group of one, keyed by the fingerprint's labels).
    public static func webhook(_ record: AlertRecord, receiver: String, externalURL: String) -> String {
        let status = record.status
        let labels = record.labels
        let annotations = record.annotations
        let grouping = labels.filter { ["alertname", "level", "entity"].contains($0.0) }
        let groupKey = "{}:{" + grouping.map { "\($0.0)=\(JSONText.quote($0.1))" }.joined(separator: ", ") + "}"
        let alert = JSONText.object([
            ("status", JSONText.quote(status)),
            ("labels", Self.strings(labels)),
            ("annotations", Self.strings(annotations)),
            ("startsAt", JSONText.quote(RFC3339.format(millis: record.event.startsAt))),
            (
                "endsAt",
                JSONText.quote(status == "resolved" ? RFC3339.format(millis: record.event.at) : Self.zeroTime)
            ),
            ("generatorURL", JSONText.quote(record.generatorURL)),
            ("fingerprint", JSONText.quote(record.fingerprint)),
        ])
        return JSONText.object([
            ("version", JSONText.quote("4")),
            ("groupKey", JSONText.quote(groupKey)),
            ("truncatedAlerts", "0"),
            ("status", JSONText.quote(status)),
            ("receiver", JSONText.quote(receiver)),
            ("groupLabels", Self.strings(grouping)),
            ("commonLabels", Self.strings(labels)),
            ("commonAnnotations", Self.strings(annotations)),
            ("externalURL", JSONText.quote(externalURL)),
            ("alerts", "[" + alert + "]"),
        ])
    }
}
