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
        ]
    )
    func invalid(_ key: String, _ value: String, _ reported: String) {
        #expect {
            _ = try Settings.load(yaml: self.yaml, environment: [:], overrides: [(key, value)])
        } throws: { error in
            (error as? SettingsError)?.key == reported
        }
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
    }
}
