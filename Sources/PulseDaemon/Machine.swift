import Foundation

/// Facts about the machine the daemon runs on.
public enum Machine {
    /// Cores this process may use, at least 1.
    public static var cores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}
