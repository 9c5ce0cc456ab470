import Foundation
import PulseKafka
import PulseTestSupport
import Testing

/// Interoperability with an independent client: kcat (Debian package `kcat`, installed by `make test`).
@Suite("Interop with kcat")
struct KcatInteropTests {
    let kcat: String

    init() throws {
        self.kcat = try #require(findProgram("kcat"), "kcat is not installed: run `make test`, which installs it")
    }

    @Test("Messages produced by kcat are consumed by our Consumer", .timeLimit(.minutes(1)))
    func consumesWhatKcatProduced() async throws {
        let broker = try EmbeddedBroker(topics: [.init("from-kcat", partitions: 3)], logger: testLogger)
        let input = (0..<20).map { "key-\($0):value-\($0)" }.joined(separator: "\n") + "\n"
        let produced = try runProgram(
            self.kcat,
            ["-b", broker.bootstrapServers, "-t", "from-kcat", "-P", "-K", ":", "-H", "origin=kcat", "-z", "lz4"],
            input: input
        )
        #expect(produced.status == 0)

        let consumer = try KafkaConsumer(
            configuration: consumerConfiguration(broker, group: uniqueName("kcat"), topics: ["from-kcat"]),
            logger: testLogger
        )
        try consumer.subscribe()
        let received = Collector<ConsumedRecord>()
        let task = startCollecting(consumer, into: received)
        try await waitUntil("kcat's messages consumed") { received.count == 20 }
        await consumer.close()
        try await task.value

        let byKey = Dictionary(uniqueKeysWithValues: received.all.map { ($0.key ?? "", $0) })
        for index in 0..<20 {
            let record = try #require(byKey["key-\(index)"])
            #expect(record.value == "value-\(index)")
            #expect(record.headers == [KafkaHeader(name: "origin", string: "kcat")])
        }
    }

    @Test("Messages produced by our Producer are read by kcat", .timeLimit(.minutes(1)))
    func kcatReadsWhatWeProduced() async throws {
        let broker = try EmbeddedBroker(topics: [.init("to-kcat", partitions: 1)], logger: testLogger)
        let producer = try KafkaProducer(configuration: producerConfiguration(broker), logger: testLogger)
        for index in 0..<5 {
            _ = try await producer.sendAndWait(
                ProducerRecord(
                    topic: "to-kcat",
                    key: "k\(index)",
                    value: "v\(index)",
                    headers: [KafkaHeader(name: "n", string: "\(index)")]
                )
            )
        }
        let read = try runProgram(
            self.kcat,
            ["-b", broker.bootstrapServers, "-t", "to-kcat", "-C", "-o", "beginning", "-e", "-q", "-f", "%k|%s|%h\n"]
        )
        #expect(read.status == 0)
        let lines = read.output.split(separator: "\n").map(String.init)
        #expect(lines == (0..<5).map { "k\($0)|v\($0)|n=\($0)" })
    }
}
