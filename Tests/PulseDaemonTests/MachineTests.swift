import Foundation
import Testing

@testable import PulseDaemon

#if canImport(Glibc)
import Glibc
#endif

@Suite("Machine")
struct MachineTests {
    #if canImport(Glibc)
    /// This process's resident bytes (`/proc/self/statm`, second field, in pages).
    static func residentBytes() throws -> Int {
        let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
        let pages = try #require(statm.split(separator: " ").dropFirst().first.flatMap { Int($0) })
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test("Free memory in the middle of the heap goes back to the system")
    func releasesFreeMemory() throws {
        // 256 MiB in 4 KiB blocks (below any mmap threshold: from the heap), each touched; then all freed
        // but every 64th, which keep the heap from shrinking at its top: only a trim gives the pages between
        // them back.
        let size = 4096
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<65_536 {
            let block = try #require(malloc(size))
            memset(block, 1, size)
            blocks.append(block)
        }
        for (index, block) in blocks.enumerated() where index % 64 != 63 { free(block) }
        let before = try Self.residentBytes()
        #expect(Machine.releaseFreeMemory())
        let after = try Self.residentBytes()
        for (index, block) in blocks.enumerated() where index % 64 == 63 { free(block) }
        #expect(before - after > 128 << 20, "resident \(before >> 20) MiB before the trim, \(after >> 20) MiB after")
    }
    #endif
}
