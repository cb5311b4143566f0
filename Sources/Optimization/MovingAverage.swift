import Autograd
import Foundation
import NN

/// An exponential moving average of a module's state, updated after each optimizer step:
/// average = m·average + (1 − m)·weights, for every parameter and buffer (so BatchNorm's
/// running statistics are averaged too).
///
/// One mechanism serves two uses:
/// - the trainer's `ema_decay` copy of the backbone, saved beside it (`init(of:)`: the
///   averages are tensors of their own);
/// - a task's momentum target network, BYOL's target and MoCo v3's momentum encoder
///   (`init(of:into:)`: the averages are the state of a module of the same architecture
///   that the task runs forward). Registered among the task's heads, the target is saved
///   in checkpoints and restored on resume and on a rollback with the rest of the model;
///   its parameters are frozen, so no optimizer updates them and no gradient reaches them.
public final class MovingAverage {
  /// The averaged tensors, named as in the source's state dict.
  public let averages: [(name: String, tensor: Tensor)]
  let sources: [Tensor]

  /// Averages of `source`'s state, starting from a copy of it.
  public init(of source: Module) {
    let state = source.stateDict()
    averages = state.map { ($0.name, $0.tensor.copy()) }
    sources = state.map(\.tensor)
  }

  /// `target` becomes the average of `source`: the two must have the same state names and
  /// shapes (the same architecture and configuration). The target starts as a copy of the
  /// source (BYOL §3.1 and MoCo v3 initialize the target with the online weights) and is
  /// frozen.
  public init(of source: Module, into target: Module) throws {
    let from = source.stateDict(), to = target.stateDict()
    guard from.map(\.name) == to.map(\.name) else {
      throw TensorError("MovingAverage", "the target's state names differ from the source's (another architecture?)")
    }
    for (s, t) in zip(from, to) {
      guard s.tensor.shape == t.tensor.shape else {
        throw TensorError("MovingAverage", "\(s.name): the target has shape \(t.tensor.shape), the source \(s.tensor.shape)")
      }
      try t.tensor.assign(s.tensor)
    }
    target.freeze()
    averages = to.map { ($0.name, $0.tensor) }
    sources = from.map(\.tensor)
  }

  /// One update with momentum `m` in [0, 1] (1 keeps the average as it is).
  public func update(momentum m: Float) {
    for ((_, a), w) in zip(averages, sources) {
      let ad = a.data, wd = w.data
      Parallel.forChunks(a.count, minChunk: 1 << 15) { r in
        for i in r { ad[i] = m * ad[i] + (1 - m) * wd[i] }
      }
    }
  }
}

/// The momentum schedule of BYOL (Grill et al. 2020, §3.2) and MoCo v3 (Chen et al.
/// 2021): from `base` at the start to 1 at the end along a half cosine,
/// m = 1 − (1 − base)·(cos(π·fraction) + 1)/2, where `fraction` is the share of the
/// planned steps done.
public func cosineMomentum(base: Double, fraction: Double) -> Float {
  let f = min(1, max(0, fraction))
  return Float(1 - (1 - base) * (Foundation.cos(Double.pi * f) + 1) / 2)
}
