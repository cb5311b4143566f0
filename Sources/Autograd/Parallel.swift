import CBLAS
import Dispatch
import Foundation

/// The one parallel-for of the engine (docs/engine-principles.md, principle 4).
///
/// Work is split into at most `Parallel.threads` contiguous chunks, statically: the
/// same thread count always gives the same split, so reductions done per chunk and then
/// combined are bit-identical from run to run. The training loop itself stays
/// single-threaded; only kernels call this.
public enum Parallel {
  nonisolated(unsafe) private static var processesSharingCores = 1
  nonisolated(unsafe) private static var configuredThreads = defaultThreads()

  /// How many threads kernels use (and OpenBLAS uses for large GEMMs).
  public static var threads: Int { configuredThreads }

  /// Sets the thread count of Pretext's kernels and of OpenBLAS together. Call it from
  /// the main thread, outside any kernel (e.g. at startup from `--threads`).
  public static func setThreads(_ n: Int) {
    configuredThreads = max(1, n)
    BLAS.setThreads(configuredThreads)
  }

  /// Tells the engine that `processes` Pretext processes run on this machine at once
  /// (those `mpirun` started here), so the default thread count is the cores divided
  /// among them rather than all cores each, which would oversubscribe the machine. The
  /// launcher calls it at start-up, from the main thread, before any kernel runs and
  /// before `setThreads`.
  public static func shareCores(among processes: Int) {
    processesSharingCores = max(1, processes)
    configuredThreads = defaultThreads()
  }

  /// PRETEXT_THREADS, else the machine's cores — shared among the processes running on
  /// it (`shareCores(among:)`).
  private static func defaultThreads() -> Int {
    if let s = getenv("PRETEXT_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
    let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    return max(1, cores / processesSharingCores)
  }

  /// Calls `body(range)` for contiguous chunks covering 0..<count, in parallel when the
  /// work is large enough. `minChunk` is the smallest chunk worth a thread (in items).
  @inline(__always)
  public static func forChunks(
    _ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void
  ) {
    forIndexedChunks(count, minChunk: minChunk) { _, range in body(range) }
  }

  /// Like `forChunks`, also passing each chunk's index (0..<chunks), for kernels that
  /// keep one partial result per chunk and combine them in order. Returns the number of
  /// chunks used (at most `threads`).
  @inline(__always) @discardableResult
  public static func forIndexedChunks(
    _ count: Int, minChunk: Int = 1, _ body: (Int, Range<Int>) -> Void
  ) -> Int {
    if count <= 0 { return 0 }
    let chunks = min(threads, max(1, count / max(1, minChunk)))
    if chunks == 1 {
      body(0, 0..<count)
      return 1
    }
    // Kernels hand raw pointers to disjoint chunks; the closure is only called during
    // this call, so it is safe to share across the worker threads.
    nonisolated(unsafe) let work = body
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
      let lo = count * c / chunks
      let hi = count * (c + 1) / chunks
      if lo < hi { work(c, lo..<hi) }
    }
    return chunks
  }

  /// Like `forChunks`, for loops whose body calls sgemm on small matrices: OpenBLAS is
  /// held to one thread meanwhile, so Pretext's threads and OpenBLAS's never compete.
  public static func forChunksWithSerialBLAS(
    _ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void
  ) {
    forIndexedChunksWithSerialBLAS(count, minChunk: minChunk) { _, range in body(range) }
  }

  /// `forChunksWithSerialBLAS` passing each chunk's index, as `forIndexedChunks` does
  /// (min(threads, count) chunks at the default `minChunk`).
  public static func forIndexedChunksWithSerialBLAS(
    _ count: Int, minChunk: Int = 1, _ body: (Int, Range<Int>) -> Void
  ) {
    let chunks = min(threads, max(1, count / max(1, minChunk)))
    if chunks <= 1 {
      if count > 0 { body(0, 0..<count) }
      return
    }
    BLAS.withSingleThread { forIndexedChunks(count, minChunk: minChunk, body) }
  }
}

#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

/// The first error of a parallel loop, whose bodies cannot throw: each records what it
/// caught, and the caller throws `error` after the loop.
public final class FirstError: @unchecked Sendable {
  private let lock = NSLock()
  private var stored: Error?
  public init() {}
  public func record(_ error: Error) {
    lock.lock()
    if stored == nil { stored = error }
    lock.unlock()
  }
  public var error: Error? {
    lock.lock()
    defer { lock.unlock() }
    return stored
  }
}
