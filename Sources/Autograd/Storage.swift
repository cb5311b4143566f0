import Foundation
import Synchronization

/// A 64-byte aligned buffer of `Float`s, the memory behind every `Tensor`.
///
/// Buffers come from and return to `BufferPool`, so a training step that allocates the
/// same activation sizes as the previous step reuses their memory instead of going
/// through `malloc` and page faults again (docs/engine-principles.md, principle 5).
public final class TensorStorage: @unchecked Sendable {
  public let pointer: UnsafeMutablePointer<Float>
  /// Number of floats the tensor uses (the buffer may be larger: pool size classes).
  public let count: Int
  let capacity: Int

  /// Uninitialized storage for `count` floats.
  init(uninitializedCount count: Int) {
    let (pointer, capacity) = BufferPool.shared.take(count)
    self.pointer = pointer
    self.count = count
    self.capacity = capacity
  }

  /// Zero-filled storage for `count` floats.
  convenience init(zeroedCount count: Int) {
    self.init(uninitializedCount: count)
    pointer.initialize(repeating: 0, count: count)
  }

  deinit { BufferPool.shared.give(pointer, capacity: capacity) }

  public var buffer: UnsafeMutableBufferPointer<Float> {
    UnsafeMutableBufferPointer(start: pointer, count: count)
  }
}

/// A size-bucketed cache of aligned float buffers.
///
/// Size classes are powers of two split in four (so at most ~19% slack); small buffers
/// (< 4 KiB) are not worth caching and go straight back to the allocator. The cache
/// holds at most `limitBytes` of idle memory; beyond that, freed buffers are released.
public final class BufferPool: @unchecked Sendable {
  public static let shared = BufferPool()

  private struct State {
    // Addresses of idle buffers by size class (addresses, not pointers: the state is
    // Sendable and the buffers have no owner while idle).
    var idle: [Int: [UInt]] = [:]
    var idleBytes = 0
    var allocations = 0
    var reuses = 0
    /// Bytes of pooled-size buffers taken from the system and not yet given back (in use
    /// or idle), and their peak since `resetPeak`: what tensors add to the resident
    /// memory, for the memory check's measured step (Training/MemoryPlan.swift).
    var heldBytes = 0
    var peakHeldBytes = 0
  }
  private let state = Mutex(State())
  /// The most idle memory the pool keeps (bytes).
  public let limitBytes: Int = 8 << 30
  static let minimumPooledFloats = 1024

  /// Fresh allocations and pool hits since the process started (for benchmarks that
  /// count allocations per step).
  public var statistics: (allocations: Int, reuses: Int, idleBytes: Int) {
    state.withLock { ($0.allocations, $0.reuses, $0.idleBytes) }
  }

  /// Bytes held (in use or idle, buffers of 4 KiB and more) and their peak since the last
  /// `resetPeak()`.
  public var held: (bytes: Int, peak: Int) { state.withLock { ($0.heldBytes, $0.peakHeldBytes) } }

  /// Starts a new peak from the bytes held now.
  public func resetPeak() { state.withLock { $0.peakHeldBytes = $0.heldBytes } }

  /// Drops every idle buffer (returns memory to the system).
  public func trim() {
    state.withLock { s in
      for (_, list) in s.idle { for p in list { free(UnsafeMutableRawPointer(bitPattern: p)) } }
      s.idle = [:]
      s.heldBytes -= s.idleBytes
      s.idleBytes = 0
    }
  }

  static func sizeClass(_ count: Int) -> Int {
    if count <= minimumPooledFloats { return max(count, 16) }
    let top = Int.bitWidth - (count - 1).leadingZeroBitCount  // 2^top >= count
    let quarter = 1 << (top - 3)
    return ((count + quarter - 1) / quarter) * quarter
  }

  func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
    let capacity = Self.sizeClass(count)
    if capacity > Self.minimumPooledFloats {
      let reused: UInt? = state.withLock { s in
        guard var list = s.idle[capacity], let p = list.popLast() else {
          s.allocations += 1
          return nil
        }
        s.idle[capacity] = list
        s.idleBytes -= capacity * 4
        s.reuses += 1
        return p
      }
      if let reused, let p = UnsafeMutablePointer<Float>(bitPattern: reused) { return (p, capacity) }
    }
    var raw: UnsafeMutableRawPointer?
    let (bytes, overflow) = capacity.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
    guard !overflow, posix_memalign(&raw, 64, bytes) == 0, let raw else {
      AllocationFailure.stop(floats: count)
    }
    if capacity > Self.minimumPooledFloats {
      // Only fresh allocations pay this (a step that reuses its buffers does not).
      state.withLock { s in
        s.heldBytes += bytes
        s.peakHeldBytes = Swift.max(s.peakHeldBytes, s.heldBytes)
      }
    }
    return (raw.bindMemory(to: Float.self, capacity: capacity), capacity)
  }

  func give(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
    if capacity > Self.minimumPooledFloats {
      let address = UInt(bitPattern: pointer)
      let kept = state.withLock { s -> Bool in
        guard s.idleBytes + capacity * 4 <= limitBytes else {
          s.heldBytes -= capacity * 4
          return false
        }
        s.idle[capacity, default: []].append(address)
        s.idleBytes += capacity * 4
        return true
      }
      if kept { return }
    }
    free(pointer)
  }
}

/// Runs `body` with a scratch buffer of `count` floats (uninitialized) that stays alive
/// for the whole call — a raw pointer does not keep its storage alive by itself.
@inline(__always)
func withScratch<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
  let storage = TensorStorage(uninitializedCount: Swift.max(count, 1))
  return try withExtendedLifetime(storage) { try body(storage.pointer) }
}
