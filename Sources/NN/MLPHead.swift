import Autograd

/// The MLP heads of self-supervised methods: Linear → BatchNorm → ReLU, once per hidden
/// layer, then a last Linear (and, for MoCo v3, a BatchNorm without affine on the
/// output). One piece for SimCLR's projection g(·) (Chen et al. 2020, §2.1), BYOL's
/// projector and predictor (Grill et al. 2020, §3.3: 4096 hidden, 256 out), MoCo v3's
/// projector and predictor (Chen, Xie, He 2021, §4) and relative location's classifier.
///
/// Shapes: [N, input] → [N, output].
///
/// The layers are registered straight into the owning module under `prefix` (`fc1`, `bn`,
/// `fc2` with one hidden layer; `fc1`, `bn1`, `fc2`, `bn2`, `fc3` with two; `bn_out` for
/// the output norm), so that checkpoint keys are flat names such as
/// `heads.projection_fc1.weight`.
public struct MLPHead {
  public let linears: [Linear]
  public let norms: [BatchNorm]
  public let outputNorm: BatchNorm?

  /// `hiddenBias`: whether the hidden Linear layers have a bias (SimCLR, BYOL and MoCo v3
  /// leave it out, the BatchNorm after it has one). With `outputNorm` the last Linear has
  /// no bias either: the norm would subtract it again (MoCo v3's `_build_mlp`).
  public init(
    input: Int, hidden: Int, output: Int, hiddenLayers: Int = 1, hiddenBias: Bool = true,
    outputNorm: Bool = false, using rng: inout RandomGenerator
  ) {
    precondition(hiddenLayers >= 1, "an MLP head has at least one hidden layer")
    var linears: [Linear] = []
    var norms: [BatchNorm] = []
    var width = input
    for _ in 0..<hiddenLayers {
      linears.append(Linear(width, hidden, bias: hiddenBias, using: &rng))
      norms.append(BatchNorm(hidden))
      width = hidden
    }
    linears.append(Linear(width, output, bias: !outputNorm, using: &rng))
    self.linears = linears
    self.norms = norms
    self.outputNorm = outputNorm ? BatchNorm(output, affine: false) : nil
  }

  /// Registers the layers as children of `module`, named `prefix` + `fc1`, `bn`, ….
  public func register(in module: Module, prefix: String = "") {
    for (i, linear) in linears.enumerated() {
      module.register(child: "\(prefix)fc\(i + 1)", linear)
      if i < norms.count { module.register(child: norms.count == 1 ? "\(prefix)bn" : "\(prefix)bn\(i + 1)", norms[i]) }
    }
    if let outputNorm { module.register(child: "\(prefix)bn_out", outputNorm) }
  }

  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    var h = x
    for (linear, norm) in zip(linears, norms) { h = try norm(linear(h)).relu() }
    h = try linears[linears.count - 1](h)
    if let outputNorm { h = try outputNorm(h) }
    return h
  }
}
