import Logging
import PulseKafka

/// Creates the daemon's topics at start, and keeps going with a warning when it cannot.
///
/// Some brokers refuse CreateTopics (ACLs, `auto.create.topics` policies) and librdkafka's embedded
/// broker may time out on it: the topics may well exist already, so failing here would stop a daemon
/// that could work.
public struct TopicProvisioner: Sendable {
    public let admin: KafkaAdmin
    public let logger: Logger

    public init(admin: KafkaAdmin, logger: Logger) {
        self.admin = admin
        self.logger = logger
    }

    /// Creates each topic that does not exist yet.
    ///
    /// - Returns: the names of the topics that could not be created (already existing ones count as created).
    @discardableResult
    public func ensure(_ topics: [KafkaAdmin.NewTopic], timeout: Duration = .seconds(10)) async -> [String] {
        do {
            let results = try await self.admin.createTopics(topics, ignoreExisting: true, timeout: timeout)
            var failed: [String] = []
            for topic in topics {
                if case .some(.some(let error)) = results[topic.name] {
                    failed.append(topic.name)
                    self.logger.warning(
                        "Cannot create topic; continuing in case it exists",
                        metadata: ["kafka.topic": "\(topic.name)", "kafka.error": "\(error)"]
                    )
                }
            }
            return failed
        } catch {
            self.logger.warning(
                "Topic creation failed; continuing in case the topics exist",
                metadata: ["kafka.topics": "\(topics.map(\.name))", "kafka.error": "\(error)"]
            )
            return topics.map(\.name)
        }
    }
}
