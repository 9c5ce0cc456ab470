/// The topics CrowdPulse reads and writes, with the defaults of the configuration contract
/// (`topics.*` keys).
public struct TopicNames: Sendable, Equatable {
    public var input: [String] = ["crowdpulse.events"]
    public var metrics = "crowdpulse.metrics"
    public var alerts = "crowdpulse.alerts"
    public var late = "crowdpulse.late"
    public var deadLetter = "crowdpulse.deadletter"
    public var changelog = "crowdpulse.changelog"
    public var repartition = "crowdpulse.repartition"

    public init() {}

    /// Every topic the daemon needs, with the partition count and configs it should be created with.
    ///
    /// The changelog mirrors the input's partitioning and is compacted; outputs get `outputPartitions`.
    public func provisioning(inputPartitions: Int32, outputPartitions: Int32) -> [(
        name: String, partitions: Int32, configs: [String: String]
    )] {
        var result: [(name: String, partitions: Int32, configs: [String: String])] = self.input.map {
            ($0, inputPartitions, [:])
        }
        for output in [self.metrics, self.alerts, self.late, self.deadLetter, self.repartition] {
            result.append((output, outputPartitions, [:]))
        }
        result.append((self.changelog, inputPartitions, ["cleanup.policy": "compact"]))
        return result
    }
}
