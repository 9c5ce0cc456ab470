import ArgumentParser
import Foundation
import Logging
import PulseDaemon
import PulseKafka
import ServiceLifecycle

/// `crowdpulse bench-pipeline`: the full pipeline of `crowdpulse run` (decoding, validation, dedup, every
/// metric, sentiment, crisis detection, the brand stage, producing every output) on a pre-filled topic,
/// timed from the first message consumed to every input offset committed.
///
/// The daemon is the one `run` builds, from the same settings (defaults, plus `--set`); only the group id
/// is fresh, so the topic is read from the beginning.
struct BenchPipeline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-pipeline",
        abstract: "Measure the full pipeline's throughput on a pre-filled topic (first message to all committed)."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Kafka bootstrap servers.")
    var bootstrapServers: String

    @Option(help: "Input topic, read from the beginning.")
    var topic: String

    @Option(help: "Messages in the topic: the run ends when all of them are committed.")
    var messages: Int

    @Option(name: .customLong("set"), help: "Override one key, as for run (repeatable).")
    var overrides: [String] = []

    func run() async throws {
        var common = self.common
        if common.logLevel == .info { common.logLevel = .warning }
        let logger = common.bootstrapLogging()
        let group = "crowdpulse-bench-pipeline-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        var pairs: [(String, String)] = [
            ("kafka.bootstrap_servers", self.bootstrapServers), ("topics.input", self.topic),
            ("kafka.group_id", group), ("topics.create", "false"),
        ]
        for (key, value) in try parseProperties(self.overrides, option: "--set").sorted(by: { $0.key < $1.key }) {
            pairs.append((key, value))
        }
        let settings: Settings
        do throws(SettingsError) {
            settings = try Settings.load(yaml: nil, environment: [:], overrides: pairs)
        } catch {
            throw ValidationError(error.description)
        }
        _ = bootstrapPrometheus()
        Machine.startReleasingFreeMemory()
        let daemon = try Daemon(configuration: settings.daemon, logger: logger)
        let services = ServiceGroup(services: [daemon.service], logger: logger)
        let running = Task { try await services.run() }

        let probe = try KafkaConsumer(
            configuration: .init(client: settings.daemon.client, groupID: group, topics: [self.topic]),
            logger: logger
        )
        let partitions = Int32(try daemon.producer.partitionCount(of: self.topic))
        let inputs = (0..<partitions).map { TopicPartition(self.topic, $0) }
        let clock = ContinuousClock()
        var start: ContinuousClock.Instant?
        var committed: Int64 = 0
        let deadline = clock.now + .seconds(1800)
        while clock.now < deadline {
            let consumed = daemon.stats.current.messages
            if start == nil && consumed > 0 { start = clock.now }
            if consumed >= self.messages {
                if settings.daemon.guarantee == .exactlyOnce {
                    // The embedded broker does not store offsets sent in a transaction: count what the
                    // pipeline committed in its transactions.
                    let own = daemon.stats.current.committed
                    committed = inputs.reduce(0) { $0 + (own[$1] ?? 0) }
                } else {
                    committed = try probe.committed(inputs).map { max(0, $0.offset) }.reduce(0, +)
                }
                if committed >= Int64(self.messages) { break }
            }
            try await Task.sleep(for: .milliseconds(consumed >= self.messages ? 20 : 2))
        }
        let seconds = (clock.now - (start ?? clock.now)).seconds
        let stats = daemon.stats.current
        await services.triggerGracefulShutdown()
        try await running.value
        await probe.close()
        guard committed >= Int64(self.messages) else {
            throw ValidationError("only \(committed) of \(self.messages) offsets committed in 30 minutes")
        }
        print(
            "crowdpulse_pipeline guarantee=\(settings.daemon.guarantee.rawValue) messages=\(self.messages) consumed=\(stats.messages) seconds=\(String(format: "%.3f", seconds)) rate=\(Int(Double(self.messages) / seconds)) accepted=\(stats.accepted) dead_lettered=\(stats.deadLettered) metric_records=\(stats.metricsRecords) alert_records=\(daemon.pipeline.alertCount)"
        )
    }
}
