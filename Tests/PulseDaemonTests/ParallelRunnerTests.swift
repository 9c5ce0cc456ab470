import Dispatch
import Synchronization
import Testing

@testable import PulseDaemon

@Suite("Parallel runner: the pipeline's shards run at once")
struct ParallelRunnerTests {
    @Test("Every index runs exactly once per run, over many runs")
    func everyIndexOnce() {
        let runner = ParallelRunner(threads: 3, name: "test-runner")
        #expect(runner.width == 3)
        let counts = Mutex([0, 0, 0])
        for _ in 0..<500 {
            runner.run { index in counts.withLock { $0[index] += 1 } }
        }
        #expect(counts.withLock { $0 } == [500, 500, 500])
    }

    @Test("The indexes run concurrently: each waits for the other, which only works side by side")
    func concurrent() {
        let runner = ParallelRunner(threads: 2, name: "test-runner")
        let arrived = [DispatchSemaphore(value: 0), DispatchSemaphore(value: 0)]
        let metEachOther = Mutex([false, false])
        runner.run { index in
            arrived[index].signal()
            // Run one after the other, the first would wait here in vain (and give up after 10 s).
            let other = arrived[1 - index].wait(timeout: .now() + .seconds(10))
            metEachOther.withLock { $0[index] = other == .success }
        }
        #expect(metEachOther.withLock { $0 } == [true, true])
    }

    private final class Occupancy: Sendable {
        let inside = Atomic(0)
        let overlapped = Atomic(false)
    }

    @Test("Runs asked for from several threads at once are served one after the other")
    func serialized() {
        let runner = ParallelRunner(threads: 2, name: "test-runner")
        let occupancy = Occupancy()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<50 {
                runner.run { _ in
                    // Two at most: the two indexes of one run. Overlapping runs would make it up to four.
                    if occupancy.inside.add(1, ordering: .sequentiallyConsistent).newValue > 2 {
                        occupancy.overlapped.store(true, ordering: .sequentiallyConsistent)
                    }
                    occupancy.inside.subtract(1, ordering: .sequentiallyConsistent)
                }
            }
        }
        let sawOverlap = occupancy.overlapped.load(ordering: .sequentiallyConsistent)
        #expect(!sawOverlap)
    }

    @Test("More tasks than threads: each runs once, and a long task does not hold up the tasks behind it")
    func moreTasksThanThreads() {
        let runner = ParallelRunner(threads: 2, name: "test-runner")
        let counts = Mutex([Int](repeating: 0, count: 8))
        for _ in 0..<200 {
            runner.run(tasks: 8) { task in counts.withLock { $0[task] += 1 } }
        }
        #expect(counts.withLock { $0 } == [Int](repeating: 200, count: 8))

        // The first task taken waits for all seven others: only a free thread taking them one after the
        // other lets it finish (a fixed split would leave half of them queued behind it, until the timeout).
        let othersDone = DispatchSemaphore(value: 0)
        let first = Atomic(-1)
        let waitedOut = Atomic(false)
        runner.run(tasks: 8) { task in
            if first.compareExchange(expected: -1, desired: task, ordering: .sequentiallyConsistent).exchanged {
                for _ in 1..<8 where othersDone.wait(timeout: .now() + .seconds(10)) == .timedOut {
                    waitedOut.store(true, ordering: .sequentiallyConsistent)
                }
            } else {
                othersDone.signal()
            }
        }
        let timedOut = waitedOut.load(ordering: .sequentiallyConsistent)
        #expect(!timedOut)

        let fewer = Mutex<[Int]>([])
        runner.run(tasks: 1) { task in fewer.withLock { $0.append(task) } }
        #expect(fewer.withLock { $0 } == [0])
    }

    @Test("One thread runs the body on the caller only")
    func single() {
        let runner = ParallelRunner(threads: 1, name: "test-runner")
        let seen = Mutex<[Int]>([])
        runner.run { index in seen.withLock { $0.append(index) } }
        #expect(seen.withLock { $0 } == [0])
    }
}
