import Foundation
import Logging
import PulseKafka
import PulseTestSupport
import Testing

/// `crowdpulse broker` as its own process, used by independent clients over TCP.
@Suite("crowdpulse broker")
struct BrokerCommandTests {
    @Test(
        "Prints bootstrap.servers first, creates the default and requested topics, serves kcat with a group, stops on SIGTERM",
        .timeLimit(.minutes(1))
    )
    func brokerProcessServesClients() async throws {
        let broker = try BrokerProcess.start(["--brokers", "2", "--topic", "extra.topic:3", "--partitions", "4"])
        defer { broker.terminate() }
        #expect(broker.bootstrapServers.hasPrefix("127.0.0.1:"))
        #expect(broker.bootstrapServers.split(separator: ",").count == 2)

        let admin = try KafkaAdmin(
            configuration: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers),
            logger: daemonTestLogger
        )
        let topics = try await admin.describeTopics([
            "extra.topic", "crowdpulse.events", "crowdpulse.metrics", "crowdpulse.alerts", "crowdpulse.late",
            "crowdpulse.deadletter", "crowdpulse.changelog", "crowdpulse.repartition",
        ])
        #expect(topics.map(\.partitions.count) == [3, 4, 4, 4, 4, 4, 4, 4])

        let kcat = try #require(findProgram("kcat"), "kcat is not installed: run `make test`, which installs it")
        let input = (0..<30).map { "k\($0):v\($0)" }.joined(separator: "\n") + "\n"
        let produced = try runProgram(
            kcat,
            ["-b", broker.bootstrapServers, "-t", "extra.topic", "-P", "-K", ":"],
            input: input
        )
        #expect(produced.status == 0)
        // A balanced (consumer-group) kcat consumer reads everything and exits at the end of the partitions.
        let consumed = try runProgram(
            kcat,
            [
                "-b", broker.bootstrapServers, "-G", "kcat-group", "-X", "auto.offset.reset=earliest", "-e", "-q",
                "-f", "%k=%s\n", "extra.topic",
            ]
        )
        #expect(consumed.status == 0)
        let lines = Set(consumed.output.split(separator: "\n").map(String.init))
        #expect(lines == Set((0..<30).map { "k\($0)=v\($0)" }))

        let status = broker.terminate()
        #expect(status == 0)
    }

    @Test("Refuses a fixed port with a clear message")
    func refusesFixedPort() throws {
        let result = try runProgram(crowdpulseBinary(), ["broker", "--port", "9092"])
        #expect(result.status != 0)
    }

    @Test(
        "--rtt delays every response by the given latency (a lower bound: it cannot be faster)",
        .timeLimit(.minutes(1))
    )
    func addsLatency() async throws {
        #expect(try runProgram(crowdpulseBinary(), ["broker", "--rtt", "-5"]).status != 0)
        let broker = try BrokerProcess.start(["--rtt", "300", "--topic", "slow:1", "--no-default-topics"])
        defer { _ = broker.terminate() }
        let producer = try KafkaProducer(
            configuration: .init(client: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)),
            logger: daemonTestLogger
        )
        _ = try await producer.sendAndWait(ProducerRecord(topic: "slow", key: nil, value: "warm up"))
        let clock = ContinuousClock()
        let started = clock.now
        _ = try await producer.sendAndWait(ProducerRecord(topic: "slow", key: nil, value: "timed"))
        #expect(clock.now - started >= .milliseconds(300))
    }
}

/// A running `crowdpulse broker` child process.
final class BrokerProcess: Sendable {
    let process: Process
    let bootstrapServers: String

    private init(process: Process, bootstrapServers: String) {
        self.process = process
        self.bootstrapServers = bootstrapServers
    }

    static func start(_ arguments: [String]) throws -> BrokerProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try crowdpulseBinary())
        process.arguments = ["broker", "--log-level", "warning"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        // The first line is the contract: `bootstrap.servers=…`.
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { break }
            if byte.first == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("bootstrap.servers=") else {
            process.terminate()
            throw BrokerStartFailed(firstLine: text)
        }
        return BrokerProcess(process: process, bootstrapServers: String(text.dropFirst("bootstrap.servers=".count)))
    }

    /// Sends SIGTERM and waits; returns the exit status.
    @discardableResult
    func terminate() -> Int32 {
        if self.process.isRunning {
            self.process.terminate()
        }
        self.process.waitUntilExit()
        return self.process.terminationStatus
    }
}

struct BrokerStartFailed: Error {
    var firstLine: String
}
