import Autograd

/// Weight initializers as in the reference implementations: timm's truncated normal for
/// ViT, PyTorch's Kaiming schemes for convolutions and linear layers.
public enum Initializer {
  /// Normal(mean, std) truncated to [a, b] (absolute bounds, as `timm.trunc_normal_`):
  /// redraws values outside the bounds.
  public static func truncatedNormal(
    _ shape: [Int], std: Float = 0.02, mean: Float = 0, a: Float = -2, b: Float = 2,
    using rng: inout RandomGenerator
  ) -> Tensor {
    let t = Tensor.zeros(shape)
    for i in 0..<t.count {
      var v: Float
      repeat { v = mean + std * rng.nextNormal() } while v < a || v > b
      t.data[i] = v
    }
    return t
  }

  /// Uniform(−bound, bound).
  public static func uniform(_ shape: [Int], bound: Float, using rng: inout RandomGenerator) -> Tensor {
    Tensor.uniform(shape, low: -bound, high: bound, using: &rng)
  }

  /// PyTorch's default for `nn.Linear` / `nn.Conv2d` weights: Kaiming uniform with
  /// a = √5, i.e. U(−1/√fanIn, 1/√fanIn); the same bound for their biases.
  public static func pytorchDefault(_ shape: [Int], fanIn: Int, using rng: inout RandomGenerator) -> Tensor {
    uniform(shape, bound: 1 / Float(max(fanIn, 1)).squareRoot(), using: &rng)
  }

  /// Kaiming normal, fan-out mode, ReLU gain (torchvision ResNet's convolution init):
  /// N(0, √(2/fanOut)).
  public static func kaimingNormalFanOut(_ shape: [Int], fanOut: Int, using rng: inout RandomGenerator) -> Tensor {
    Tensor.randn(shape, std: (2 / Float(max(fanOut, 1))).squareRoot(), using: &rng)
  }

  /// Xavier (Glorot) uniform: U(±√(6/(fanIn+fanOut))) (MAE's linear layers and patch
  /// embedding).
  public static func xavierUniform(_ shape: [Int], fanIn: Int, fanOut: Int, using rng: inout RandomGenerator) -> Tensor {
    uniform(shape, bound: (6 / Float(fanIn + fanOut)).squareRoot(), using: &rng)
  }
}
