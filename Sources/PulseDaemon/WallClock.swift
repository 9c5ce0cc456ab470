import Foundation

/// The wall clock, read only in the daemon (the core gets time from events or an injected clock).
public enum WallClock {
    /// Epoch milliseconds now.
    public static func nowMillis() -> Int64 {
        // Foundation rather than `clock_gettime`: with MemberImportVisibility, `timespec`'s members belong to
        // whichever C module Clang loaded the header for first (CNIOLinux in some builds), not to Glibc.
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
