import Autograd

/// y = x·Wᵀ + b over the last axis. Parameters: `weight` [out, in], `bias` [out].
public final class Linear: Module {
  public let weight: Tensor
  public let bias: Tensor?
  public let inFeatures: Int, outFeatures: Int

  /// How the weight starts. The bias starts at zero except with `.pytorchDefault`.
  public enum Initialization: Sendable {
    /// PyTorch's nn.Linear default (Kaiming uniform a=√5, bias U(±1/√in)).
    case pytorchDefault
    /// timm's ViT: truncated normal std 0.02, bias 0.
    case truncatedNormal(std: Float)
    /// MAE's choice for its linear layers: Xavier uniform, bias 0.
    case xavierUniform
  }

  public init(
    _ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, initialization: Initialization = .pytorchDefault,
    using rng: inout RandomGenerator
  ) {
    self.inFeatures = inFeatures
    self.outFeatures = outFeatures
    switch initialization {
    case .pytorchDefault:
      weight = Initializer.pytorchDefault([outFeatures, inFeatures], fanIn: inFeatures, using: &rng)
      self.bias = bias ? Initializer.pytorchDefault([outFeatures], fanIn: inFeatures, using: &rng) : nil
    case .truncatedNormal(let std):
      weight = Initializer.truncatedNormal([outFeatures, inFeatures], std: std, using: &rng)
      self.bias = bias ? Tensor.zeros([outFeatures]) : nil
    case .xavierUniform:
      weight = Initializer.xavierUniform([outFeatures, inFeatures], fanIn: inFeatures, fanOut: outFeatures, using: &rng)
      self.bias = bias ? Tensor.zeros([outFeatures]) : nil
    }
    super.init()
    register(parameter: "weight", weight)
    if let b = self.bias { register(parameter: "bias", b) }
  }

  /// x [*, in] → [*, out].
  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    let y = try linear(x, weight: weight, bias: bias)
    profile(y, macs: x.count / inFeatures * inFeatures * outFeatures)
    return y
  }
}

/// 2-D convolution layer. Parameters: `weight` [out, in/groups, kH, kW], `bias` [out].
public final class Conv2d: Module {
  public let weight: Tensor
  public let bias: Tensor?
  public let options: Conv2dOptions

  /// Initialization: PyTorch's default (Kaiming uniform a=√5) unless `kaimingFanOut`
  /// (torchvision ResNet: normal, fan-out, ReLU gain).
  public init(
    _ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), options: Conv2dOptions = Conv2dOptions(),
    bias: Bool = true, kaimingFanOut: Bool = false, using rng: inout RandomGenerator
  ) {
    let shape = [outChannels, inChannels / options.groups, kernelSize.0, kernelSize.1]
    let fanIn = shape[1] * kernelSize.0 * kernelSize.1
    weight =
      kaimingFanOut
      ? Initializer.kaimingNormalFanOut(shape, fanOut: outChannels * kernelSize.0 * kernelSize.1, using: &rng)
      : Initializer.pytorchDefault(shape, fanIn: fanIn, using: &rng)
    self.bias = bias ? Initializer.pytorchDefault([outChannels], fanIn: fanIn, using: &rng) : nil
    self.options = options
    super.init()
    register(parameter: "weight", weight)
    if let b = self.bias { register(parameter: "bias", b) }
  }

  public convenience init(
    _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
    groups: Int = 1, bias: Bool = true, kaimingFanOut: Bool = false, using rng: inout RandomGenerator
  ) {
    self.init(
      inChannels, outChannels, kernelSize: (kernelSize, kernelSize),
      options: Conv2dOptions(stride: stride, padding: padding, groups: groups), bias: bias,
      kaimingFanOut: kaimingFanOut, using: &rng)
  }

  /// x [N, C, H, W] → [N, O, Hout, Wout].
  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    let y = try conv2d(x, weight: weight, bias: bias, options: options)
    // K²·Cin/groups·Cout·Hout·Wout per image.
    let perOutput = weight.shape[1] * weight.shape[2] * weight.shape[3]
    profile(y, macs: y.count * perOutput)
    return y
  }
}

/// Batch normalization over axis 1 of [N, C, …] (torchvision's BatchNorm2d/1d names:
/// `weight`, `bias`, buffers `running_mean`, `running_var`, `num_batches_tracked`).
public final class BatchNorm: Module {
  public let weight: Tensor?
  public let bias: Tensor?
  public let runningMean: Tensor
  public let runningVar: Tensor
  /// Counted like PyTorch's buffer (stored as a float scalar).
  public let batchesTracked: Tensor
  public let momentum: Float
  public let eps: Float
  /// Synchronized batch norm: the processes whose slices of the global batch share the
  /// training statistics (nil: this process's batch alone). Set by the trainer.
  public var statisticsGroup: (any Communicator)? = nil

  public init(_ channels: Int, affine: Bool = true, momentum: Float = 0.1, eps: Float = 1e-5) {
    weight = affine ? Tensor.ones([channels]) : nil
    bias = affine ? Tensor.zeros([channels]) : nil
    runningMean = Tensor.zeros([channels])
    runningVar = Tensor.ones([channels])
    batchesTracked = Tensor.zeros([])
    self.momentum = momentum
    self.eps = eps
    super.init()
    if let weight { register(parameter: "weight", weight) }
    if let bias { register(parameter: "bias", bias) }
    register(buffer: "running_mean", runningMean)
    register(buffer: "running_var", runningVar)
    register(buffer: "num_batches_tracked", batchesTracked)
  }

  /// bn(x), or relu(bn(x) + residual) with the fused epilogue (see `batchNorm`).
  public func callAsFunction(_ x: Tensor, adding residual: Tensor? = nil, relu: Bool = false) throws -> Tensor {
    let y = try batchNorm(
      x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
      training: isTraining, momentum: momentum, eps: eps, statisticsGroup: statisticsGroup,
      residual: residual, relu: relu)
    if isTraining { batchesTracked.data[0] += 1 }
    profile(y, macs: 0)
    return y
  }
}

/// Layer normalization over the last axis (`weight`, `bias` [dim]).
public final class LayerNorm: Module {
  public let weight: Tensor
  public let bias: Tensor
  public let eps: Float

  /// timm's ViT uses eps = 1e-6.
  public init(_ dim: Int, eps: Float = 1e-6) {
    weight = Tensor.ones([dim])
    bias = Tensor.zeros([dim])
    self.eps = eps
    super.init()
    register(parameter: "weight", weight)
    register(parameter: "bias", bias)
  }

  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    let y = try layerNorm(x, weight: weight, bias: bias, eps: eps)
    profile(y, macs: 0)
    return y
  }
}

/// Multi-head self-attention with a fused qkv projection, as timm's `Attention`
/// (`qkv` Linear(dim, 3·dim), `proj` Linear(dim, dim)).
public final class MultiHeadAttention: Module {
  public let qkv: Linear
  public let proj: Linear
  public let heads: Int

  public init(dim: Int, heads: Int, qkvBias: Bool = true, initialization: Linear.Initialization, using rng: inout RandomGenerator) {
    precondition(dim % heads == 0, "MultiHeadAttention: width \(dim) is not divisible by \(heads) heads")
    qkv = Linear(dim, 3 * dim, bias: qkvBias, initialization: initialization, using: &rng)
    proj = Linear(dim, dim, initialization: initialization, using: &rng)
    self.heads = heads
    super.init()
    register(child: "qkv", qkv)
    register(child: "proj", proj)
  }

  public override var typeName: String { "Attention" }

  /// x [B, T, dim] → [B, T, dim].
  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    let packed = try qkv(x)
    let attended = try packedSelfAttention(packed, heads: heads)
    // Q·Kᵀ and attention·V: 2·B·T²·dim multiply-accumulates.
    let (b, t, d) = (x.shape[0], x.shape[1], x.shape[2])
    profile(attended, macs: 2 * b * t * t * d, parameters: 0)
    return try proj(attended)
  }
}

/// Two linear layers with GELU between them, as timm's `Mlp` (`fc1`, `fc2`).
public final class MLP: Module {
  public let fc1: Linear
  public let fc2: Linear

  public init(dim: Int, hidden: Int, initialization: Linear.Initialization, using rng: inout RandomGenerator) {
    fc1 = Linear(dim, hidden, initialization: initialization, using: &rng)
    fc2 = Linear(hidden, dim, initialization: initialization, using: &rng)
    super.init()
    register(child: "fc1", fc1)
    register(child: "fc2", fc2)
  }

  public override var typeName: String { "Mlp" }

  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    try fc2(fc1(x).gelu())
  }
}
