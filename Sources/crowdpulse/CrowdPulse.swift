import ArgumentParser
import CoreMetrics
import Logging
import Prometheus
import PulseDaemon

/// The `crowdpulse` command line.
@main
struct CrowdPulse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crowdpulse",
        abstract: "Windowed engagement, virality and sentiment metrics and crisis alerts from Kafka event streams.",
        subcommands: [
            Run.self, Demo.self, Broker.self, ReplayCommand.self, BacktestCommand.self, CheckConfig.self, Generate.self,
            BenchConsume.self, BenchPipeline.self,
            BenchDecode.self, BenchReplay.self, SentimentCommand.self, BenchSentiment.self,
        ]
    )
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format on standard error: text or json (one object per line).")
    var logFormat: LogFormat = .text

    enum LogFormat: String, ExpressibleByArgument {
        case text, json
    }

    /// Bootstraps logging once, to standard error (standard output is for data).
    func bootstrapLogging() -> Logger {
        let level = self.logLevel
        let format = self.logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        return Logger(label: "crowdpulse")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Parses repeatable `key=value` options into a dictionary.
func parseProperties(_ pairs: [String], option: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for pair in pairs {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
            throw ValidationError("\(option) expects key=value, got '\(pair)'")
        }
        result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
    }
    return result
}

/// Makes swift-metrics record into a Prometheus registry (once per process; only commands that serve
/// `/metrics` call it) and returns the registry.
func bootstrapPrometheus() -> PrometheusCollectorRegistry {
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    // The latency objectives (p99 event→alert ≤ 2 s) need bucket bounds around them: the library's default
    // buckets jump from 1 s to 2.5 s.
    let latencyBuckets: [Duration] = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60].map {
        .milliseconds(Int64($0 * 1000))
    }
    for label in ["crowdpulse_alert_latency_seconds", "crowdpulse_event_processing_latency_seconds"] {
        factory.durationHistogramBuckets[label] = latencyBuckets
    }
    MetricsSystem.bootstrap(factory)
    return registry
}

extension Duration {
    /// The duration in seconds, for rates in the benchmark and generator output.
    var seconds: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
}
