/// The processes of a data-parallel run and the collective operations between them.
///
/// Data-parallel training runs one copy of the model per process; each process takes a
/// slice of every global batch. The processes meet only through these collectives,
/// called by every process in the same order. `SingleProcess` is the trivial group (a
/// run on one process); `MPIProcessGroup` (module Distributed) is a run launched by `mpirun`. Code written
/// against `Communicator` runs the same way on one process and on many.
///
/// Collectives are called from the training thread only (never from inside a kernel's
/// worker threads), and they do not fail: a broken group ends every process.
public protocol Communicator: AnyObject, Sendable {
  /// This process's index, 0..<size.
  var rank: Int { get }
  /// The number of processes.
  var size: Int { get }
  /// Element-wise sums over every process, in place: each process gives `count` values
  /// and ends with the sums.
  func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int)
  func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int)
  /// Every process gives `bytes` bytes; each receives all of them, in rank order, in
  /// `receive` (size × bytes).
  func allGather(_ send: UnsafeRawPointer, bytes: Int, into receive: UnsafeMutableRawPointer)
  /// Overwrites `bytes` bytes on every process with those of process `root`.
  func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int)
}

extension Communicator {
  /// Whether this process writes the run's files (logs, checkpoints, artifacts).
  public var isLeader: Bool { rank == 0 }

  /// The sums over every process of `values` (the same count everywhere).
  public func allReduceSum(_ values: [Double]) -> [Double] {
    var v = values
    v.withUnsafeMutableBufferPointer { if let p = $0.baseAddress { allReduceSum(p, count: $0.count) } }
    return v
  }

  /// One value from every process, in rank order.
  public func allGather(_ value: UInt64) -> [UInt64] {
    var send = value
    var all = [UInt64](repeating: 0, count: size)
    all.withUnsafeMutableBytes { out in
      withUnsafeBytes(of: &send) { allGather($0.baseAddress!, bytes: 8, into: out.baseAddress!) }
    }
    return all
  }

  /// `bytes` as process `root` has them (any length: the length is sent first).
  public func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8] {
    var count = UInt64(bytes.count)
    withUnsafeMutableBytes(of: &count) { broadcast($0.baseAddress!, bytes: 8, root: root) }
    var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
    out.withUnsafeMutableBytes { if let p = $0.baseAddress { broadcast(p, bytes: $0.count, root: root) } }
    return out
  }
}

/// A run on one process: every collective is the identity.
public final class SingleProcess: Communicator {
  public init() {}
  public var rank: Int { 0 }
  public var size: Int { 1 }
  public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) {}
  public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) {}
  public func allGather(_ send: UnsafeRawPointer, bytes: Int, into receive: UnsafeMutableRawPointer) {
    receive.copyMemory(from: send, byteCount: bytes)
  }
  public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
}
