import Autograd

/// Drop path (stochastic depth, Huang et al. 2016; DeiT's and MAE's fine-tuning, timm's
/// `DropPath`): in training, a residual branch is dropped for a whole sample with
/// probability `rate`, and kept samples are scaled by 1/(1 − rate) so the expected output
/// is unchanged. Rate 0 (the default) and evaluation pass the branch through untouched.
/// Every mask is drawn from `generator`, so a seed reproduces a run.
public struct DropPath: Sendable {
  public var rate: Float = 0
  public var generator = RandomGenerator(seed: 0)
  public init() {}

  /// `branch` [B, …] with whole samples zeroed (when `training` and `rate` > 0).
  public mutating func callAsFunction(_ branch: Tensor, training: Bool) throws -> Tensor {
    guard training, rate > 0 else { return branch }
    let keep = 1 - rate
    let b = branch.shape[0]
    var mask = [Float](repeating: 0, count: b)
    for i in 0..<b where generator.nextFloat() < keep { mask[i] = 1 / keep }
    return try branch * Tensor(shape: [b] + [Int](repeating: 1, count: branch.rank - 1), mask)
  }

  /// Sets the rates of `paths` rising linearly from 0 at the first to `maximum` at the
  /// last (timm's `drop_path_rate` rule, over blocks in network order), each drawing from
  /// its own generator seeded from `seed`.
  public static func rising(to maximum: Float, over count: Int, seed: UInt64) -> [DropPath] {
    (0..<count).map { i in
      var p = DropPath()
      p.rate = count > 1 ? maximum * Float(i) / Float(count - 1) : maximum
      p.generator = RandomGenerator(seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
      return p
    }
  }
}
