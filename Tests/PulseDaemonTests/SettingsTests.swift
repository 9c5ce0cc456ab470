import Foundation
import PulseCore
import PulseDaemon
import PulseKafka
import Testing

@Suite("Settings: file, environment, flags")
struct SettingsTests {
    let yaml = """
        kafka:
          bootstrap_servers: broker:9092
          group_id: from-file
          librdkafka:
            security.protocol: SASL_SSL
            sasl.password: hunter2
        topics:
          input: [a, b]
          metrics: m
        windows:
          size: 5m
          step: 1m
          grace: 10s
          emit: updates
          emit_interval: 30s
        detection:
          enabled: false
        metrics:
          weights:
            share: 4
        """

    @Test("Precedence: flag > environment > file > default")
    func precedence() throws {
        let settings = try Settings.load(
            yaml: self.yaml,
            environment: ["CROWDPULSE_KAFKA_GROUP_ID": "from-env", "CROWDPULSE_WINDOWS_GRACE": "20s", "HOME": "/x"],
            overrides: [("windows.grace", "15s")]
        )
        let daemon = settings.daemon
        #expect(daemon.client.bootstrapServers == "broker:9092")
        #expect(daemon.groupID == "from-env")
        #expect(daemon.windows.graceMillis == 15_000)
        #expect(daemon.windows.window == .hopping(size: 300_000, step: 60_000))
        #expect(daemon.windows.emit == .updates(intervalMillis: 30_000))
        #expect(daemon.windows.weights.share == 4 && daemon.windows.weights.like == 1)
        #expect(daemon.topics.input == ["a", "b"] && daemon.topics.metrics == "m")
        #expect(daemon.topics.late == "crowdpulse.late")
        #expect(daemon.client.librdkafka == ["security.protocol": "SASL_SSL", "sasl.password": "hunter2"])
        #expect(daemon.decoder.maxFutureSkewMillis == 300_000 && daemon.dedup.horizonMillis == 600_000)
    }

    @Test("librdkafka properties from the environment; secrets are redacted in the description")
    func secrets() throws {
        let lines = try Settings.describe(
            yaml: self.yaml,
            environment: ["CROWDPULSE_KAFKA_LIBRDKAFKA_SASL_USERNAME": "svc"],
            overrides: []
        )
        #expect(lines.contains("kafka.librdkafka.sasl.username: svc"))
        #expect(lines.contains("kafka.librdkafka.sasl.password: <redacted>"))
        #expect(!lines.joined().contains("hunter2"))
    }

    @Test(
        "Invalid values fail with the key path and the reason",
        arguments: [
            ("windows.size", "sixty", "windows.size"), ("windows.step", "7s", "windows.step"),
            ("windows.emit", "sometimes", "windows.emit"), ("processing.guarantee", "maybe", "processing.guarantee"),
            ("ingest.max_message_bytes", "-1", "ingest.max_message_bytes"), ("http.listen", "9720", "http.listen"),
            ("no.such.key", "1", "no.such.key"), ("metrics.weights.like", "-2", "metrics.weights.like"),
            ("processing.threads", "0", "processing.threads"), ("processing.threads", "many", "processing.threads"),
            ("processing.commit_interval", "0s", "processing.commit_interval"),
            ("processing.changelog_compression", "brotli", "processing.changelog_compression"),
        ]
    )
    func invalid(_ key: String, _ value: String, _ reported: String) {
        #expect {
            _ = try Settings.load(yaml: self.yaml, environment: [:], overrides: [(key, value)])
        } throws: { error in
            (error as? SettingsError)?.key == reported
        }
    }

    @Test("processing.guarantee: at_least_once by default, exactly_once from any source")
    func guarantee() throws {
        #expect(try Settings.load(yaml: self.yaml, environment: [:], overrides: []).daemon.guarantee == .atLeastOnce)
        let fromEnvironment = try Settings.load(
            yaml: self.yaml,
            environment: ["CROWDPULSE_PROCESSING_GUARANTEE": "exactly_once"],
            overrides: []
        )
        #expect(fromEnvironment.daemon.guarantee == .exactlyOnce)
        let lines = try Settings.describe(
            yaml: self.yaml,
            environment: ["CROWDPULSE_PROCESSING_GUARANTEE": "exactly_once"],
            overrides: []
        )
        #expect(lines.contains("processing.guarantee: exactly_once"))
    }

    @Test(
        "processing.threads: one per core by default (auto), or a number; processing.commit_interval: 5 s, 1 s under exactly_once"
    )
    func threadsAndCommitInterval() throws {
        let defaults = try Settings.load(yaml: self.yaml, environment: [:], overrides: [])
        #expect(defaults.daemon.threads == Machine.cores)
        #expect(defaults.daemon.commitInterval == .seconds(5))
        let exactlyOnce = try Settings.load(
            yaml: self.yaml,
            environment: [:],
            overrides: [("processing.guarantee", "exactly_once")]
        )
        #expect(exactlyOnce.daemon.commitInterval == .seconds(1))
        let exactlyOnceSet = try Settings.load(
            yaml: self.yaml,
            environment: [:],
            overrides: [("processing.guarantee", "exactly_once"), ("processing.commit_interval", "10s")]
        )
        #expect(exactlyOnceSet.daemon.commitInterval == .seconds(10))
        let auto = try Settings.load(yaml: self.yaml, environment: [:], overrides: [("processing.threads", "auto")])
        #expect(auto.daemon.threads == Machine.cores)
        let set = try Settings.load(
            yaml: self.yaml,
            environment: ["CROWDPULSE_PROCESSING_THREADS": "3"],
            overrides: [("processing.commit_interval", "250ms")]
        )
        #expect(set.daemon.threads == 3)
        #expect(set.daemon.commitInterval == .milliseconds(250))
    }

    @Test("processing.changelog_compression: lz4 by default, any librdkafka codec, shown in the effective settings")
    func changelogCompression() throws {
        #expect(
            try Settings.load(yaml: self.yaml, environment: [:], overrides: []).daemon.changelogCompression == "lz4"
        )
        let none = try Settings.load(
            yaml: self.yaml,
            environment: ["CROWDPULSE_PROCESSING_CHANGELOG_COMPRESSION": "none"],
            overrides: []
        )
        #expect(none.daemon.changelogCompression == "none")
        let lines = try Settings.describe(
            yaml: self.yaml,
            environment: [:],
            overrides: [("processing.changelog_compression", "zstd")]
        )
        #expect(lines.contains("processing.changelog_compression: zstd"))
    }

    @Test("bootstrap servers are required for run, not for replay")
    func requiredBootstrap() throws {
        #expect(throws: SettingsError(key: "kafka.bootstrap_servers", reason: "required (or --bootstrap-servers)")) {
            _ = try Settings.load(yaml: nil, environment: [:], overrides: [])
        }
        let offline = try Settings.load(yaml: nil, environment: [:], overrides: [], requireKafka: false)
        #expect(offline.daemon.windows.window == .tumbling(60_000))
        #expect(offline.httpListen == "127.0.0.1:9720")
    }

    @Test("Detection and alert keys: file, environment and flags; defaults of design §9")
    func detectionAndAlerts() throws {
        let yaml = """
            kafka: {bootstrap_servers: "b:9092"}
            detection: {window: 10m, step: 2m, min_negative: 25}
            alerts:
              for: 2m
              alertmanager: {url: ["http://am-0:9093", "http://am-1:9093/"]}
              webhook: {url: "https://hooks.example/x"}
              assessment: {mixed_at: 0.25}
            """
        let settings = try Settings.load(
            yaml: yaml,
            environment: ["CROWDPULSE_ALERTS_KEEP_FIRING_FOR": "5m", "CROWDPULSE_ALERTS_RUNBOOK_URL": "https://rb/x"],
            overrides: [("alerts.resend_interval", "30s"), ("alerts.assessment.coordinated_at", "0.7")]
        )
        let detection = try #require(settings.detection)
        #expect(detection.windowMillis == 600_000 && detection.stepMillis == 120_000 && detection.minNegative == 25)
        #expect(detection.lifecycle == .init(forMillis: 120_000, keepFiringForMillis: 300_000, cooldownMillis: 900_000))
        #expect(detection.mixedAt == 0.25 && detection.coordinatedAt == 0.7)
        #expect(detection.warningZ == 3 && detection.criticalZ == 5 && detection.criticalVolume == 250)
        #expect(settings.alerts.alertmanagerURLs == ["http://am-0:9093", "http://am-1:9093/"])
        #expect(settings.alerts.webhookURL == "https://hooks.example/x")
        #expect(settings.alerts.resendIntervalMillis == 30_000 && settings.alerts.runbookURL == "https://rb/x")
        #expect(settings.alerts.isEnabled)

        let defaults = try Settings.load(yaml: nil, environment: [:], overrides: [], requireKafka: false)
        #expect(defaults.detection == CrisisDetector.Configuration())
        #expect(defaults.alerts == AlertDelivery.Configuration() && !defaults.alerts.isEnabled)
        #expect(defaults.alerts.resendIntervalMillis == 60_000 && defaults.alerts.resolvedResendMillis == 300_000)
        let off = try Settings.load(
            yaml: nil,
            environment: [:],
            overrides: [("detection.enabled", "false")],
            requireKafka: false
        )
        #expect(off.detection == nil)
    }

    @Test(
        "Invalid detection and alert values name their key",
        arguments: [
            ("alerts.webhook.url", "ftp://x", "alerts.webhook.url"),
            ("alerts.alertmanager.url", "am:9093", "alerts.alertmanager.url"),
            ("alerts.assessment.mixed_at", "1.5", "alerts.assessment.mixed_at"),
            ("alerts.assessment.coordinated_at", "0.1", "alerts.assessment.coordinated_at"),
            ("detection.step", "90s", "detection.step"),
            ("detection.window", "330s", "detection.window"),
            ("detection.critical_z", "2", "detection.critical_z"),
            ("windows.step", "30s", "detection.enabled"),
            ("alerts.resend_interval", "0s", "alerts.resend_interval"),
        ]
    )
    func invalidDetection(key: String, value: String, reported: String) {
        #expect {
            _ = try Settings.load(yaml: nil, environment: [:], overrides: [(key, value)], requireKafka: false)
        } throws: { error in
            (error as? SettingsError)?.key == reported
        }
    }

    @Test("Credentials in a receiver URL are redacted in the description")
    func urlRedaction() throws {
        let lines = try Settings.describe(
            yaml: nil,
            environment: [:],
            overrides: [
                ("kafka.bootstrap_servers", "b:9092"), ("alerts.webhook.url", "https://svc:s3cret@hooks.example/x"),
            ]
        )
        #expect(lines.contains("alerts.webhook.url: https://svc:<redacted>@hooks.example/x"))
        #expect(!lines.joined().contains("s3cret"))
    }

    @Test("Malformed YAML is reported, not ignored")
    func malformedYAML() {
        #expect(throws: SettingsError.self) {
            _ = try Settings.load(yaml: "kafka: [unclosed", environment: [:], overrides: [])
        }
    }
}

@Suite("deploy/crowdpulse.yaml")
struct SampleConfigurationTests {
    @Test("The sample configuration is valid and matches the defaults")
    func sampleIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/crowdpulse.yaml")
        let settings = try Settings.load(
            yaml: try String(contentsOf: path, encoding: .utf8),
            environment: [:],
            overrides: []
        )
        #expect(settings.daemon.windows == WindowEngine.Configuration())
        #expect(settings.daemon.topics == TopicNames())
        #expect(settings.httpListen == "127.0.0.1:9720")
        #expect(settings.detection == CrisisDetector.Configuration())
        #expect(settings.alerts == AlertDelivery.Configuration())
        #expect(settings.daemon.threads == Machine.cores)
        #expect(settings.daemon.commitInterval == .seconds(5))
        #expect(Daemon.Configuration(client: settings.daemon.client).commitInterval == .seconds(5))
        // The one deliberate difference: Kafka keeps the compacted changelog, the embedded broker 5 MiB of it.
        #expect(settings.daemon.changelogRetainedBytes == 0)
        #expect(Daemon.Configuration(client: settings.daemon.client).changelogRetainedBytes == 5 * 1024 * 1024)
    }
}
