import Dispatch
import Foundation
import Synchronization

/// Runs one closure on several threads at once and waits for all of them: the calling thread takes index 0,
/// dedicated threads (started once, parked between runs) take the others.
///
/// Dedicated threads rather than `DispatchQueue.concurrentPerform`, so that the width is exactly the
/// configured thread count whatever the global queues are doing. Runs are serialized: the pipeline task and
/// a rebalance hook (on the consumer's thread) may both ask for one.
final class ParallelRunner: Sendable {
    private final class Worker: @unchecked Sendable {
        let index: Int
        let start = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        /// Written by the caller before `start` is signalled, read by the worker after it waits on it: the
        /// semaphore orders the accesses.
        var job: (@Sendable (Int) -> Void)?
        var stop = false

        init(index: Int) { self.index = index }

        func loop() {
            while true {
                self.start.wait()
                if self.stop { return }
                self.job?(self.index)
                self.job = nil
                self.done.signal()
            }
        }
    }

    private let workers: [Worker]
    private let serial = Mutex(())

    /// Width of a run (the calling thread included).
    var width: Int { self.workers.count + 1 }

    init(threads: Int, name: String) {
        self.workers = (1..<max(1, threads)).map { Worker(index: $0) }
        for worker in self.workers {
            let thread = Thread { worker.loop() }
            thread.name = "\(name)-\(worker.index)"
            thread.start()
        }
    }

    deinit {
        for worker in self.workers {
            worker.stop = true
            worker.start.signal()
        }
    }

    /// Calls `body(i)` for every `i` in `0..<width`, concurrently; returns when all calls have returned.
    func run(_ body: @escaping @Sendable (Int) -> Void) {
        self.run(tasks: self.width, body)
    }

    /// Calls `body(i)` once for every `i` in `0..<tasks`, on up to ``width`` threads at once; returns when all
    /// calls have returned. Each thread takes the next task as soon as it finishes one, so with more tasks
    /// than threads a long task does not hold up the tasks queued behind it on the same thread.
    func run(tasks: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard !self.workers.isEmpty, tasks > 1 else {
            for task in 0..<tasks { body(task) }
            return
        }
        let next = Counter()
        let claiming: @Sendable (Int) -> Void = { _ in
            while true {
                let task = next.value.wrappingAdd(1, ordering: .relaxed).oldValue
                guard task < tasks else { return }
                body(task)
            }
        }
        self.serial.withLock { _ in
            let helpers = self.workers.prefix(tasks - 1)
            for worker in helpers {
                worker.job = claiming
                worker.start.signal()
            }
            claiming(0)
            for worker in helpers { worker.done.wait() }
        }
    }

    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }
}
