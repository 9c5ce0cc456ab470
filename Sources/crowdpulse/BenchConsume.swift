import ArgumentParser
import Foundation
import Logging
import PulseKafka

/// `crowdpulse bench-consume`: how fast our Swift consumer reads a pre-filled topic.
///
/// Counterpart of `Benchmarks/c/rawconsume.c`: same group protocol, same prefetch settings, same stop
/// condition (the expected number of messages), so the two rates can be divided.
struct BenchConsume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-consume",
        abstract: "Measure the Swift consumer's throughput on a pre-filled topic."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Kafka bootstrap servers.")
    var bootstrapServers: String

    @Option(help: "Topic to read from the beginning.")
    var topic: String

    @Option(help: "Stop after this many messages.")
    var messages: Int

    @Option(help: "Messages per batch.")
    var batchSize: Int = 4096

    func run() async throws {
        var common = self.common
        common.logLevel = .warning
        let logger = common.bootstrapLogging()
        let consumer = try KafkaConsumer(
            configuration: .init(
                client: .init(bootstrapServers: self.bootstrapServers, clientID: "crowdpulse-bench"),
                groupID: "crowdpulse-bench-\(getpid())-\(Int.random(in: 0..<1_000_000))",
                topics: [self.topic],
                maxBatchSize: self.batchSize
            ),
            logger: logger
        )
        try consumer.subscribe()
        let clock = ContinuousClock()
        var start: ContinuousClock.Instant?
        var count = 0
        var bytes = 0
        var checksum: UInt64 = 0
        while count < self.messages, let batch = try await consumer.nextBatch() {
            if start == nil { start = clock.now }  // from the first message, as the C consumer measures
            count += batch.count
            bytes += batch.byteCount
            for message in batch {
                // Touch every message so the copy cannot be optimised away.
                checksum &+= UInt64(message.offset) &+ UInt64(message.value.count)
            }
        }
        let elapsed = clock.now - (start ?? clock.now)
        let seconds = elapsed.seconds
        await consumer.close()
        print(
            "swift_consumer messages=\(count) seconds=\(String(format: "%.3f", seconds)) rate=\(Int(Double(count) / seconds)) mb_per_s=\(String(format: "%.1f", Double(bytes) / seconds / 1e6)) checksum=\(checksum)"
        )
    }
}
