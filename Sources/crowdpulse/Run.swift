import ArgumentParser
import Foundation
import Logging
import PulseDaemon
import PulseKafka
import ServiceLifecycle
import UnixSignals

/// Where settings come from: a YAML file, `--set`, and shortcut flags (which count as `--set`).
struct SettingsOptions: ParsableArguments {
    @Option(help: "YAML configuration file (keys: docs/configuration in Settings.swift, design §9).")
    var config: String?

    @Option(name: .customLong("set"), help: "Override one key, e.g. --set windows.grace=10s (repeatable).")
    var overrides: [String] = []

    @Option(help: "Kafka bootstrap servers (kafka.bootstrap_servers).")
    var bootstrapServers: String?

    @Option(help: "Consumer group id (kafka.group_id).")
    var groupId: String?

    @Option(name: .customLong("topic"), help: "Input topic (topics.input; repeatable).")
    var topics: [String] = []

    @Option(
        name: [.customShort("X"), .customLong("librdkafka")],
        help: "Any librdkafka property as key=value (kafka.librdkafka.<key>; repeatable)."
    )
    var librdkafka: [String] = []

    @Option(help: "HTTP endpoints address, host:port (http.listen).")
    var httpListen: String?

    func load() throws -> Settings {
        var pairs: [(String, String)] = []
        for (key, value) in try parseProperties(self.overrides, option: "--set").sorted(by: { $0.key < $1.key }) {
            pairs.append((key, value))
        }
        for (key, value) in try parseProperties(self.librdkafka, option: "--librdkafka") {
            pairs.append(("kafka.librdkafka.\(key)", value))
        }
        if let bootstrapServers { pairs.append(("kafka.bootstrap_servers", bootstrapServers)) }
        if let groupId { pairs.append(("kafka.group_id", groupId)) }
        if !self.topics.isEmpty { pairs.append(("topics.input", self.topics.joined(separator: ","))) }
        if let httpListen { pairs.append(("http.listen", httpListen)) }
        var yaml: String? = nil
        if let config {
            do {
                yaml = try String(contentsOfFile: config, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read --config \(config): \(error.localizedDescription)")
            }
        }
        do throws(SettingsError) {
            return try Settings.load(yaml: yaml, environment: ProcessInfo.processInfo.environment, overrides: pairs)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// `crowdpulse run`: the daemon against a Kafka cluster.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume events from Kafka: validate, deduplicate, window and aggregate, produce metric records."
    )

    @OptionGroup var common: CommonOptions
    @OptionGroup var settings: SettingsOptions

    func run() async throws {
        let logger = self.common.bootstrapLogging()
        let settings = try self.settings.load()
        let daemonConfiguration = settings.daemon
        if settings.createTopics {
            let admin = try KafkaAdmin(configuration: daemonConfiguration.client, logger: logger)
            let topics = daemonConfiguration.topics.provisioning(
                inputPartitions: settings.partitions,
                outputPartitions: settings.partitions
            ).map { KafkaAdmin.NewTopic(name: $0.name, partitions: $0.partitions, configs: $0.configs) }
            await TopicProvisioner(admin: admin, logger: logger).ensure(topics)
        }
        let registry = bootstrapPrometheus()
        Machine.startReleasingFreeMemory()
        let daemon = try Daemon(
            configuration: daemonConfiguration,
            logger: logger,
            externalURL: "http://\(settings.httpListen)"
        )
        let readiness = HTTPEndpoints.readiness(of: daemon, maxLag: settings.readyMaxLag)
        let http = try HTTPEndpoints.service(
            listen: settings.httpListen,
            registry: registry,
            readiness: readiness,
            query: .init(live: daemon.live, status: { daemon.statusJSON() }, token: settings.httpToken),
            logger: logger
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: daemon.service),
            .init(service: ProgressReporter(stats: daemon.stats, interval: .seconds(10), logger: logger)),
            .init(service: http),
            .init(service: ReadinessGauge(readiness: readiness)),
        ]
        if let delivery = daemon.alertDelivery { services.append(.init(service: delivery)) }
        var configuration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // Past the deadline the group is cancelled: the consumer still leaves the group on its way out.
        configuration.maximumGracefulShutdownDuration = .milliseconds(settings.shutdownTimeoutMillis)
        // And if cancelling then hangs too (a librdkafka call waiting for a broker that is gone), the process
        // ends anyway: a supervisor restarts it, and the next owner restores from the changelog.
        configuration.maximumCancellationDuration = .seconds(15)
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
    }
}

/// `crowdpulse check-config FILE`: validates and prints the effective configuration, secrets redacted.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration (file, environment, --set) and print the effective settings."
    )

    @Argument(help: "The YAML configuration file.")
    var file: String?

    @Option(name: .customLong("set"), help: "Override one key (repeatable).")
    var overrides: [String] = []

    func run() throws {
        let yaml = try self.file.map { try String(contentsOfFile: $0, encoding: .utf8) }
        let pairs = try parseProperties(self.overrides, option: "--set").sorted { $0.key < $1.key }.map {
            ($0.key, $0.value)
        }
        do throws(SettingsError) {
            for line in try Settings.describe(
                yaml: yaml,
                environment: ProcessInfo.processInfo.environment,
                overrides: pairs
            ) {
                print(line)
            }
        } catch {
            throw ValidationError(error.description)
        }
    }
}
