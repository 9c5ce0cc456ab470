import Foundation
import PulseCore
import PulseKafka
import Yams

/// A configuration value that is missing or invalid, named by its key path.
public struct SettingsError: Error, Equatable, CustomStringConvertible {
    public var key: String
    public var reason: String

    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }

    public var description: String { "configuration key '\(self.key)': \(self.reason)" }
}

/// The daemon's settings, from one YAML file (`--config`), `CROWDPULSE_*` environment variables and
/// `--set key=value` flags, with precedence flag > environment > file > default (design §9).
///
/// ## Keys
/// - `kafka.bootstrap_servers` (required for `run`) · `kafka.group_id` (`crowdpulse`) ·
///   `kafka.librdkafka.<property>` (any librdkafka property, passed through)
/// - `topics.input` (list, `crowdpulse.events`) · `topics.metrics` · `topics.alerts` · `topics.late` ·
///   `topics.deadletter` · `topics.changelog` · `topics.repartition`
/// - `topics.create` (`true`) · `topics.partitions` (6, for topics the daemon creates)
/// - `windows.size` (`60s`) · `windows.step` (= size: tumbling) · `windows.grace` (`30s`) ·
///   `windows.idle_close` (`60s`) · `windows.emit` (`final` | `updates`) · `windows.emit_interval` (`10s`)
/// - `ingest.max_message_bytes` (65536) · `ingest.max_future_skew` (`5m`) · `ingest.dedup_horizon` (`10m`)
/// - `metrics.unique_exact_limit` (1000) · `metrics.weights.like|comment|share|purchase` (1, 2, 3, 5)
/// - `processing.guarantee` (`at_least_once`) · `processing.threads` (`auto`: one per core) ·
///   `processing.commit_interval` (`5s`; `1s` under `exactly_once`) · `processing.changelog_retained_bytes` (5 MiB) ·
///   `processing.changelog_compression` (`lz4`) · `http.listen` (`127.0.0.1:9720`) · `http.ready_max_lag` (1000) ·
///   `http.token` (unset: the query API is open; a secret, never printed)
/// - `lifecycle.shutdown_timeout` (`30s`): the drain deadline after SIGTERM/SIGINT
/// - `detection.enabled` (`true`) · `detection.window` (`5m`) · `detection.step` (`1m`) ·
///   `detection.min_negative` (15) · `detection.warning_z` (3) · `detection.critical_z` (5) ·
///   `detection.critical_volume` (250) · `detection.share_z` (4) · `detection.min_lift` (2) ·
///   `detection.max_entities` (200000) · `detection.idle_ttl` (`8d`)
/// - `alerts.for` (`1m`) · `alerts.keep_firing_for` (`10m`) · `alerts.cooldown` (`15m`) ·
///   `alerts.resend_interval` (`1m`) · `alerts.resolved_resend_for` (`5m`) · `alerts.runbook_url` ·
///   `alerts.alertmanager.url` (list of base URLs) · `alerts.webhook.url` · `alerts.delivery.timeout` (`10s`) ·
///   `alerts.delivery.max_backoff` (`1m`) · `alerts.delivery.max_queued` (10000) ·
///   `alerts.assessment.mixed_at` (0.3) · `alerts.assessment.coordinated_at` (0.6)
///
/// Durations are written `500ms`, `30s`, `5m`, `1h`; lists as YAML lists, or comma-separated in flags and
/// environment variables. The environment variable of a key is `CROWDPULSE_` + the key upper-cased with
/// `.` → `_` (`CROWDPULSE_KAFKA_GROUP_ID`); for `kafka.librdkafka.*` the property's dots are underscores
/// (`CROWDPULSE_KAFKA_LIBRDKAFKA_SASL_PASSWORD` → `sasl.password`).
public struct Settings: Sendable {
    public var daemon: Daemon.Configuration
    public var httpListen: String
    /// `/readyz` answers 503 while the consumer lag is above this many messages.
    public var readyMaxLag: Int64
    /// `http.token`: when set, the query API (`/v1/*`) requires `Authorization: Bearer <token>`.
    public var httpToken: String?
    /// How long SIGTERM/SIGINT may take to drain, commit and leave before the process is cancelled.
    public var shutdownTimeoutMillis: Int64
    public var createTopics: Bool
    public var partitions: Int32
    /// Crisis detection (`detection.*`, `alerts.for|keep_firing_for|cooldown|assessment.*`); `nil` when
    /// `detection.enabled` is false.
    public var detection: CrisisDetector.Configuration? { self.daemon.detection }
    /// Alert delivery to Alertmanager and a webhook (`alerts.*`).
    public var alerts: AlertDelivery.Configuration { self.daemon.alerts }

    /// Every key this version reads (other than `kafka.librdkafka.*`).
    public static let knownKeys: [String] = [
        "kafka.bootstrap_servers", "kafka.group_id", "topics.input", "topics.metrics", "topics.alerts",
        "topics.late", "topics.deadletter", "topics.changelog", "topics.repartition", "topics.create",
        "topics.partitions", "windows.size", "windows.step", "windows.grace", "windows.idle_close", "windows.emit",
        "windows.emit_interval", "ingest.max_message_bytes", "ingest.max_future_skew", "ingest.dedup_horizon",
        "metrics.unique_exact_limit", "metrics.weights.like", "metrics.weights.comment", "metrics.weights.share",
        "metrics.weights.purchase", "processing.guarantee", "processing.threads", "processing.commit_interval",
        "processing.changelog_retained_bytes", "processing.changelog_compression",
        "http.listen", "http.ready_max_lag", "http.token",
        "lifecycle.shutdown_timeout", "detection.enabled", "detection.window", "detection.step",
        "detection.min_negative", "detection.warning_z", "detection.critical_z", "detection.critical_volume",
        "detection.share_z", "detection.min_lift", "detection.max_entities", "detection.idle_ttl", "alerts.for",
        "alerts.keep_firing_for", "alerts.cooldown", "alerts.resend_interval", "alerts.resolved_resend_for",
        "alerts.runbook_url", "alerts.alertmanager.url", "alerts.webhook.url", "alerts.delivery.timeout",
        "alerts.delivery.max_backoff", "alerts.delivery.max_queued", "alerts.assessment.mixed_at",
        "alerts.assessment.coordinated_at",
    ]

    /// Keys of librdkafka properties that hold secrets; their values are never printed.
    public static func isSecret(_ key: String) -> Bool {
        let lower = key.lowercased()
        return ["password", "secret", "token", "key.pem", "private"].contains { lower.contains($0) }
    }

    /// Loads and validates.
    ///
    /// - Parameters:
    ///   - yaml: the configuration file's text, if any.
    ///   - environment: the process environment (only `CROWDPULSE_*` is read).
    ///   - overrides: `key=value` pairs from `--set` (and dedicated flags), highest precedence.
    ///   - requireKafka: `false` for offline use (`replay`), where `kafka.bootstrap_servers` is not needed.
    public static func load(
        yaml: String?,
        environment: [String: String],
        overrides: [(String, String)],
        requireKafka: Bool = true
    ) throws(SettingsError) -> Settings {
        var values = try Self.flatten(yaml: yaml)
        for (name, value) in environment where name.hasPrefix("CROWDPULSE_") {
            if let key = Self.key(forEnvironment: name) { values[key] = value }
        }
        for (key, value) in overrides { values[key] = value }
        for key in values.keys where !Self.knownKeys.contains(key) && !key.hasPrefix("kafka.librdkafka.") {
            throw SettingsError(key: key, reason: "unknown key")
        }
        return try Settings(values, requireKafka: requireKafka)
    }

    /// The effective settings as `key: value` lines, secrets redacted (for `check-config`).
    public static func describe(
        yaml: String?,
        environment: [String: String],
        overrides: [(String, String)]
    ) throws(SettingsError) -> [String] {
        let settings = try Self.load(yaml: yaml, environment: environment, overrides: overrides)
        let d = settings.daemon
        var lines = [
            "kafka.bootstrap_servers: \(d.client.bootstrapServers)", "kafka.group_id: \(d.groupID)",
        ]
        for (key, value) in d.client.librdkafka.sorted(by: { $0.key < $1.key }) {
            lines.append("kafka.librdkafka.\(key): \(Self.isSecret(key) ? "<redacted>" : value)")
        }
        lines += [
            "topics.input: \(d.topics.input.joined(separator: ","))", "topics.metrics: \(d.topics.metrics)",
            "topics.alerts: \(d.topics.alerts)", "topics.late: \(d.topics.late)",
            "topics.deadletter: \(d.topics.deadLetter)", "topics.changelog: \(d.topics.changelog)",
            "topics.repartition: \(d.topics.repartition)", "topics.create: \(settings.createTopics)",
            "topics.partitions: \(settings.partitions)",
            "windows.size: \(d.windows.window.sizeMillis)ms", "windows.step: \(d.windows.window.stepMillis)ms",
            "windows.grace: \(d.windows.graceMillis)ms", "windows.idle_close: \(d.windows.idleCloseMillis)ms",
            "windows.emit: \(d.windows.emit == .final ? "final" : "updates")",
            "ingest.max_message_bytes: \(d.decoder.maxMessageBytes)",
            "ingest.max_future_skew: \(d.decoder.maxFutureSkewMillis)ms",
            "ingest.dedup_horizon: \(d.dedup.horizonMillis)ms",
            "metrics.unique_exact_limit: \(d.windows.uniqueExactLimit)",
            "processing.guarantee: \(d.guarantee.rawValue)", "processing.threads: \(d.threads)",
            "processing.commit_interval: \(d.commitInterval.wholeMilliseconds)ms",
            "processing.changelog_retained_bytes: \(d.changelogRetainedBytes)",
            "processing.changelog_compression: \(d.changelogCompression)",
            "http.listen: \(settings.httpListen)",
            "http.ready_max_lag: \(settings.readyMaxLag)",
            "http.token: \(settings.httpToken == nil ? "" : "<redacted>")",
            "lifecycle.shutdown_timeout: \(settings.shutdownTimeoutMillis)ms",
        ]
        if let detection = settings.detection {
            lines += [
                "detection.enabled: true", "detection.window: \(detection.windowMillis)ms",
                "detection.step: \(detection.stepMillis)ms", "detection.min_negative: \(detection.minNegative)",
                "detection.warning_z: \(detection.warningZ)", "detection.critical_z: \(detection.criticalZ)",
                "detection.critical_volume: \(detection.criticalVolume)", "detection.share_z: \(detection.shareZ)",
                "detection.min_lift: \(detection.minLift)", "detection.max_entities: \(detection.maxEntities)",
                "detection.idle_ttl: \(detection.idleTTLMillis)ms",
                "alerts.for: \(detection.lifecycle.forMillis)ms",
                "alerts.keep_firing_for: \(detection.lifecycle.keepFiringForMillis)ms",
                "alerts.cooldown: \(detection.lifecycle.cooldownMillis)ms",
                "alerts.assessment.mixed_at: \(detection.mixedAt)",
                "alerts.assessment.coordinated_at: \(detection.coordinatedAt)",
            ]
        } else {
            lines.append("detection.enabled: false")
        }
        let alerts = settings.alerts
        lines += [
            "alerts.resend_interval: \(alerts.resendIntervalMillis)ms",
            "alerts.resolved_resend_for: \(alerts.resolvedResendMillis)ms",
            "alerts.runbook_url: \(alerts.runbookURL ?? "")",
            "alerts.alertmanager.url: \(alerts.alertmanagerURLs.map(Self.redactURL).joined(separator: ","))",
            "alerts.webhook.url: \(alerts.webhookURL.map(Self.redactURL) ?? "")",
            "alerts.delivery.timeout: \(alerts.timeoutMillis)ms",
            "alerts.delivery.max_backoff: \(alerts.maxBackoffMillis)ms",
            "alerts.delivery.max_queued: \(alerts.maxQueued)",
        ]
        return lines
    }

    /// A URL with its user-info password (`https://user:secret@host`) replaced: receivers often carry
    /// credentials in the URL.
    static func redactURL(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else {
            return url
        }
        let userInfo = url[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<userInfo.index(after: colon)]) + "<redacted>" + String(url[at...])
    }

    static func httpURL(_ key: String, _ text: String) throws(SettingsError) -> String {
        let lower = text.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://"), text.count > "http://".count,
            !text.contains(" ")
        else {
            throw SettingsError(key: key, reason: "'\(Self.redactURL(text))' is not an http:// or https:// URL")
        }
        return text
    }

    // MARK: - Parsing

    static func key(forEnvironment name: String) -> String? {
        let rest = String(name.dropFirst("CROWDPULSE_".count))
        if rest.hasPrefix("KAFKA_LIBRDKAFKA_") {
            let property = rest.dropFirst("KAFKA_LIBRDKAFKA_".count).lowercased().replacingOccurrences(
                of: "_",
                with: "."
            )
            return "kafka.librdkafka.\(property)"
        }
        return Self.knownKeys.first { $0.uppercased().replacingOccurrences(of: ".", with: "_") == rest }
    }

    /// Flattens a YAML mapping into dotted keys; lists become comma-separated text.
    static func flatten(yaml: String?) throws(SettingsError) -> [String: String] {
        guard let yaml, !yaml.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return [:] }
        let node: Any?
        do {
            node = try Yams.load(yaml: yaml)
        } catch {
            throw SettingsError(key: "(file)", reason: "not valid YAML: \(error)")
        }
        guard let root = node as? [String: Any] else {
            throw SettingsError(key: "(file)", reason: "the top level must be a mapping")
        }
        var result: [String: String] = [:]
        func walk(_ value: Any, _ path: String) throws(SettingsError) {
            // librdkafka properties contain dots themselves: keep their names whole.
            if path.hasPrefix("kafka.librdkafka."), let map = value as? [String: Any] {
                for (key, inner) in map { try walk(inner, "\(path).\(key)") }
                return
            }
            switch value {
            case let map as [String: Any]:
                for (key, inner) in map { try walk(inner, path.isEmpty ? key : "\(path).\(key)") }
            case let list as [Any]:
                result[path] = list.map { "\($0)" }.joined(separator: ",")
            default:
                result[path] = "\(value)"
            }
        }
        try walk(root, "")
        return result
    }

    /// Parses a duration such as `500ms`, `30s`, `5m`, `1h`, `2d`.
    public static func duration(_ key: String, _ text: String) throws(SettingsError) -> Int64 {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let number = Int64(text.dropLast(suffix.count)), number >= 0 { return number * factor }
        }
        throw SettingsError(key: key, reason: "'\(text)' is not a duration such as 500ms, 30s, 5m or 1h")
    }

    private init(_ values: [String: String], requireKafka: Bool) throws(SettingsError) {
        func value(_ key: String) -> String? { values[key].flatMap { $0.isEmpty ? nil : $0 } }
        func int(_ key: String, _ fallback: Int, range: ClosedRange<Int>) throws(SettingsError) -> Int {
            guard let text = value(key) else { return fallback }
            guard let number = Int(text), range.contains(number) else {
                throw SettingsError(key: key, reason: "'\(text)' is not a whole number in \(range)")
            }
            return number
        }
        func double(_ key: String, _ fallback: Double) throws(SettingsError) -> Double {
            guard let text = value(key) else { return fallback }
            guard let number = Double(text), number >= 0, number.isFinite else {
                throw SettingsError(key: key, reason: "'\(text)' is not a number ≥ 0")
            }
            return number
        }
        func millis(_ key: String, _ fallback: Int64) throws(SettingsError) -> Int64 {
            guard let text = value(key) else { return fallback }
            return try Settings.duration(key, text)
        }

        let bootstrap = value("kafka.bootstrap_servers") ?? ""
        if requireKafka && bootstrap.isEmpty {
            throw SettingsError(key: "kafka.bootstrap_servers", reason: "required (or --bootstrap-servers)")
        }
        var librdkafka: [String: String] = [:]
        for (key, text) in values where key.hasPrefix("kafka.librdkafka.") {
            librdkafka[String(key.dropFirst("kafka.librdkafka.".count))] = text
        }
        var topics = TopicNames()
        if let input = value("topics.input") {
            topics.input = input.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            }
            guard !topics.input.isEmpty else { throw SettingsError(key: "topics.input", reason: "needs a topic") }
        }
        topics.metrics = value("topics.metrics") ?? topics.metrics
        topics.alerts = value("topics.alerts") ?? topics.alerts
        topics.late = value("topics.late") ?? topics.late
        topics.deadLetter = value("topics.deadletter") ?? topics.deadLetter
        topics.changelog = value("topics.changelog") ?? topics.changelog
        topics.repartition = value("topics.repartition") ?? topics.repartition

        let size = try millis("windows.size", 60_000)
        let step = try millis("windows.step", size)
        guard size > 0 else { throw SettingsError(key: "windows.size", reason: "must be positive") }
        guard step > 0, step <= size, size % step == 0 else {
            throw SettingsError(key: "windows.step", reason: "must be positive, at most windows.size, and divide it")
        }
        var windows = WindowEngine.Configuration(
            window: WindowSpec(sizeMillis: size, stepMillis: step),
            graceMillis: try millis("windows.grace", 30_000),
            idleCloseMillis: try millis("windows.idle_close", 60_000),
            uniqueExactLimit: try int("metrics.unique_exact_limit", 1000, range: 0...1_000_000)
        )
        switch value("windows.emit") ?? "final" {
        case "final": windows.emit = .final
        case "updates":
            let interval = try millis("windows.emit_interval", 10_000)
            guard interval > 0 else { throw SettingsError(key: "windows.emit_interval", reason: "must be positive") }
            windows.emit = .updates(intervalMillis: interval)
        case let other: throw SettingsError(key: "windows.emit", reason: "'\(other)' is not final or updates")
        }
        windows.weights = EngagementWeights(
            like: try double("metrics.weights.like", 1),
            comment: try double("metrics.weights.comment", 2),
            share: try double("metrics.weights.share", 3),
            purchase: try double("metrics.weights.purchase", 5)
        )
        let guaranteeText = value("processing.guarantee") ?? "at_least_once"
        guard let guarantee = ProcessingGuarantee(rawValue: guaranteeText) else {
            throw SettingsError(
                key: "processing.guarantee",
                reason: "'\(guaranteeText)' is not at_least_once or exactly_once"
            )
        }
        self.daemon = Daemon.Configuration(
            client: KafkaClientConfiguration(bootstrapServers: bootstrap, librdkafka: librdkafka),
            groupID: value("kafka.group_id") ?? "crowdpulse",
            topics: topics,
            decoder: EventDecoder.Configuration(
                maxMessageBytes: try int("ingest.max_message_bytes", 65_536, range: 1...100_000_000),
                maxFutureSkewMillis: try millis("ingest.max_future_skew", 300_000)
            ),
            dedup: Deduplicator.Configuration(horizonMillis: try millis("ingest.dedup_horizon", 600_000)),
            windows: windows
        )
        self.daemon.guarantee = guarantee
        if let threads = value("processing.threads"), threads != "auto" {
            guard let count = Int(threads), (1...64).contains(count) else {
                throw SettingsError(key: "processing.threads", reason: "'\(threads)' is not auto or 1...64")
            }
            self.daemon.threads = count
        }
        // The default depends on the guarantee, as Kafka Streams' `commit.interval.ms` does (30 s, and 100 ms
        // under exactly-once). Under `at_least_once` outputs go out as they are made and the commit only
        // checkpoints and commits offsets, re-encoding every window that took events since the last one: every
        // 5 s rather than every second it wrote a third of the changelog bytes and took a fifth less CPU at
        // 50 000 events/s (docs/performance.md, session 13), and a crash re-processes up to 5 s of input.
        // Under `exactly_once` outputs are visible to `read_committed` readers only at the commit, so alerts
        // wait for it: 1 s. Either way a stream that pauses commits at once.
        let commitMillis = try millis("processing.commit_interval", guarantee == .exactlyOnce ? 1000 : 5000)
        guard (10...600_000).contains(commitMillis) else {
            throw SettingsError(key: "processing.commit_interval", reason: "must be between 10ms and 10m")
        }
        self.daemon.commitInterval = .milliseconds(commitMillis)
        self.daemon.changelogRetainedBytes = try int(
            "processing.changelog_retained_bytes",
            Changelog.defaultRetainedBytes,
            range: 0...Int(Int32.max)
        )
        let codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
        self.daemon.changelogCompression = value("processing.changelog_compression") ?? "lz4"
        guard codecs.contains(self.daemon.changelogCompression) else {
            throw SettingsError(
                key: "processing.changelog_compression",
                reason: "'\(self.daemon.changelogCompression)' is not one of \(codecs.joined(separator: ", "))"
            )
        }
        self.readyMaxLag = Int64(try int("http.ready_max_lag", 1000, range: 0...Int(Int32.max)))
        self.shutdownTimeoutMillis = try millis("lifecycle.shutdown_timeout", 30_000)
        self.httpListen = value("http.listen") ?? "127.0.0.1:9720"
        self.httpToken = value("http.token")
        guard self.httpListen.contains(":") else {
            throw SettingsError(key: "http.listen", reason: "'\(self.httpListen)' is not host:port")
        }
        switch value("topics.create") ?? "true" {
        case "true": self.createTopics = true
        case "false": self.createTopics = false
        case let other: throw SettingsError(key: "topics.create", reason: "'\(other)' is not true or false")
        }
        self.partitions = Int32(try int("topics.partitions", 6, range: 1...10_000))

        func unit(_ key: String, _ fallback: Double) throws(SettingsError) -> Double {
            let number = try double(key, fallback)
            guard number <= 1 else { throw SettingsError(key: key, reason: "'\(number)' is not between 0 and 1") }
            return number
        }
        func positive(_ key: String, _ fallback: Int64) throws(SettingsError) -> Int64 {
            let result = try millis(key, fallback)
            guard result > 0 else { throw SettingsError(key: key, reason: "must be positive") }
            return result
        }
        let lifecycle = AlertLifecycle.Configuration(
            forMillis: try millis("alerts.for", 60_000),
            keepFiringForMillis: try millis("alerts.keep_firing_for", 600_000),
            cooldownMillis: try millis("alerts.cooldown", 900_000)
        )
        let detection = CrisisDetector.Configuration(
            windowMillis: try positive("detection.window", 300_000),
            stepMillis: try positive("detection.step", 60_000),
            minNegative: try int("detection.min_negative", 15, range: 1...1_000_000),
            warningZ: try double("detection.warning_z", 3),
            criticalZ: try double("detection.critical_z", 5),
            criticalVolume: try int("detection.critical_volume", 250, range: 1...100_000_000),
            shareZ: try double("detection.share_z", 4),
            minLift: try double("detection.min_lift", 2),
            mixedAt: try unit("alerts.assessment.mixed_at", 0.3),
            coordinatedAt: try unit("alerts.assessment.coordinated_at", 0.6),
            lifecycle: lifecycle,
            idleTTLMillis: try positive("detection.idle_ttl", 8 * 86_400_000),
            maxEntities: try int("detection.max_entities", 200_000, range: 1...100_000_000)
        )
        guard detection.criticalZ >= detection.warningZ else {
            throw SettingsError(key: "detection.critical_z", reason: "must be at least detection.warning_z")
        }
        guard detection.coordinatedAt >= detection.mixedAt else {
            throw SettingsError(
                key: "alerts.assessment.coordinated_at",
                reason: "must be at least alerts.assessment.mixed_at"
            )
        }
        switch value("detection.enabled") ?? "true" {
        case "true":
            // The detector sums the metric windows inside its own window: they must not overlap.
            guard windows.window.sizeMillis == windows.window.stepMillis else {
                throw SettingsError(
                    key: "detection.enabled",
                    reason: "crisis detection needs tumbling metric windows (windows.step = windows.size); "
                        + "set detection.enabled=false to use hopping windows"
                )
            }
            guard detection.stepMillis % size == 0 else {
                throw SettingsError(key: "detection.step", reason: "must be a multiple of windows.size")
            }
            guard detection.windowMillis % detection.stepMillis == 0 else {
                throw SettingsError(key: "detection.window", reason: "must be a multiple of detection.step")
            }
            self.daemon.detection = detection
        case "false": self.daemon.detection = nil
        case let other: throw SettingsError(key: "detection.enabled", reason: "'\(other)' is not true or false")
        }

        var alerts = AlertDelivery.Configuration()
        for url in (value("alerts.alertmanager.url") ?? "").split(separator: ",") {
            let trimmed = url.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty {
                alerts.alertmanagerURLs.append(try Settings.httpURL("alerts.alertmanager.url", trimmed))
            }
        }
        if let url = value("alerts.webhook.url") { alerts.webhookURL = try Settings.httpURL("alerts.webhook.url", url) }
        alerts.runbookURL = value("alerts.runbook_url")
        alerts.resendIntervalMillis = try positive("alerts.resend_interval", 60_000)
        alerts.resolvedResendMillis = try millis("alerts.resolved_resend_for", 300_000)
        alerts.timeoutMillis = try positive("alerts.delivery.timeout", 10_000)
        alerts.maxBackoffMillis = try positive("alerts.delivery.max_backoff", 60_000)
        alerts.maxQueued = try int("alerts.delivery.max_queued", 10_000, range: 1...10_000_000)
        self.daemon.alerts = alerts
    }
}
