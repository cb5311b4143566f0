import Autograd
import NN

// Residual networks: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
// https://arxiv.org/abs/1512.03385 — with torchvision's `resnet` parameter names (minus
// the classifier `fc`), so weights move between Pretext and torchvision unchanged.

public struct ResNetConfig: Codable, Sendable, Equatable {
  public enum Block: String, Codable, Sendable { case basic, bottleneck }
  public enum Stem: String, Codable, Sendable {
    /// 7×7 stride-2 convolution + 3×3 stride-2 max pool (ImageNet).
    case imagenet
    /// 3×3 stride-1 convolution, no max pool (CIFAR-sized images; SimCLR's CIFAR variant).
    case small
  }

  public var name: String
  public var block: Block
  /// Blocks per stage (e.g. [2, 2, 2, 2] for ResNet-18).
  public var layers: [Int]
  /// Channels of the first stage (64 in the paper); each stage doubles it.
  public var width: Int
  public var inChannels: Int
  public var stem: Stem
  /// The image size this backbone is used at (for inspection and input checks).
  public var imageSize: Int

  public init(
    name: String = "resnet", block: Block, layers: [Int], width: Int = 64, inChannels: Int = 3, stem: Stem = .imagenet,
    imageSize: Int = 224
  ) {
    self.name = name
    self.block = block
    self.layers = layers
    self.width = width
    self.inChannels = inChannels
    self.stem = stem
    self.imageSize = imageSize
  }

  var expansion: Int { block == .basic ? 1 : 4 }
  public var featureCount: Int { width * 8 * expansion }

  func validate() throws {
    guard layers.count == 4, layers.allSatisfy({ $0 > 0 }), width > 0, inChannels == 1 || inChannels == 3 else {
      throw BackboneError("\(name): needs 4 stages with at least one block each, a positive width and 1 or 3 input channels")
    }
    guard imageSize >= (stem == .imagenet ? 32 : 8) else {
      throw BackboneError("\(name): image size \(imageSize) is too small for the \(stem.rawValue) stem")
    }
  }
}

/// conv 1×1 + BatchNorm matching the residual's shape (`downsample.0`, `downsample.1`).
final class Downsample: Module {
  let conv: Conv2d
  let bn: BatchNorm
  init(_ inC: Int, _ outC: Int, stride: Int, using rng: inout RandomGenerator) {
    conv = Conv2d(inC, outC, kernelSize: 1, stride: stride, bias: false, kaimingFanOut: true, using: &rng)
    bn = BatchNorm(outC)
    super.init()
    register(child: "0", conv)
    register(child: "1", bn)
  }
  override var typeName: String { "Sequential" }
  func callAsFunction(_ x: Tensor) throws -> Tensor { try bn(conv(x)) }
}

/// A block whose residual branch drop path can drop (timm's ResNet `drop_path_rate`).
protocol ResidualBlock: Module {
  var dropPath: DropPath { get set }
}

extension ResidualBlock {
  /// relu(branch + shortcut): the last BatchNorm's fused epilogue adds and rectifies,
  /// unless drop path may drop the branch first (training with a rate above 0).
  func join(_ bn: BatchNorm, _ branch: Tensor, shortcut: Tensor) throws -> Tensor {
    guard isTraining, dropPath.rate > 0 else { return try bn(branch, adding: shortcut, relu: true) }
    return try (dropPath(bn(branch), training: true) + shortcut).relu()
  }
}

/// ResNet-18/34's block: two 3×3 convolutions.
public final class BasicBlock: Module, ResidualBlock {
  let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm
  let downsample: Downsample?
  var dropPath = DropPath()

  init(_ inC: Int, _ planes: Int, stride: Int, using rng: inout RandomGenerator) {
    conv1 = Conv2d(inC, planes, kernelSize: 3, stride: stride, padding: 1, bias: false, kaimingFanOut: true, using: &rng)
    bn1 = BatchNorm(planes)
    conv2 = Conv2d(planes, planes, kernelSize: 3, padding: 1, bias: false, kaimingFanOut: true, using: &rng)
    bn2 = BatchNorm(planes)
    downsample = stride != 1 || inC != planes ? Downsample(inC, planes, stride: stride, using: &rng) : nil
    super.init()
    register(child: "conv1", conv1)
    register(child: "bn1", bn1)
    register(child: "conv2", conv2)
    register(child: "bn2", bn2)
    if let downsample { register(child: "downsample", downsample) }
  }

  func callAsFunction(_ x: Tensor) throws -> Tensor {
    // relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut), each BN with its fused epilogue.
    let h = try bn1(conv1(x), relu: true)
    return try join(bn2, conv2(h), shortcut: downsample?(x) ?? x)
  }
}

/// ResNet-50's block: 1×1 reduce, 3×3 (stride here, as torchvision "v1.5"), 1×1 expand ×4.
public final class Bottleneck: Module, ResidualBlock {
  let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm, conv3: Conv2d, bn3: BatchNorm
  let downsample: Downsample?
  var dropPath = DropPath()

  init(_ inC: Int, _ planes: Int, stride: Int, using rng: inout RandomGenerator) {
    conv1 = Conv2d(inC, planes, kernelSize: 1, bias: false, kaimingFanOut: true, using: &rng)
    bn1 = BatchNorm(planes)
    conv2 = Conv2d(planes, planes, kernelSize: 3, stride: stride, padding: 1, bias: false, kaimingFanOut: true, using: &rng)
    bn2 = BatchNorm(planes)
    conv3 = Conv2d(planes, planes * 4, kernelSize: 1, bias: false, kaimingFanOut: true, using: &rng)
    bn3 = BatchNorm(planes * 4)
    downsample = stride != 1 || inC != planes * 4 ? Downsample(inC, planes * 4, stride: stride, using: &rng) : nil
    super.init()
    register(child: "conv1", conv1)
    register(child: "bn1", bn1)
    register(child: "conv2", conv2)
    register(child: "bn2", bn2)
    register(child: "conv3", conv3)
    register(child: "bn3", bn3)
    if let downsample { register(child: "downsample", downsample) }
  }

  func callAsFunction(_ x: Tensor) throws -> Tensor {
    var out = try bn1(conv1(x), relu: true)
    out = try bn2(conv2(out), relu: true)
    return try join(bn3, conv3(out), shortcut: downsample?(x) ?? x)
  }
}

/// A stage: blocks in sequence (`layer1` … `layer4`).
final class Stage: Module {
  let blocks: [(Tensor) throws -> Tensor]
  init(_ modules: [Module], _ apply: [(Tensor) throws -> Tensor]) {
    blocks = apply
    super.init()
    for (i, m) in modules.enumerated() { register(child: String(i), m) }
  }
  override var typeName: String { "Sequential" }
  func callAsFunction(_ x: Tensor) throws -> Tensor {
    var h = x
    for b in blocks { h = try b(h) }
    return h
  }
}

public final class ResNet: Module, Backbone {
  public let resnetConfig: ResNetConfig
  let conv1: Conv2d
  let bn1: BatchNorm
  let stages: [Stage]
  /// Every residual block, in network order (drop path's rates rise along it).
  let residualBlocks: [any ResidualBlock]

  public var config: BackboneConfig { .resnet(resnetConfig) }
  public var featureCount: Int { resnetConfig.featureCount }

  public init(_ c: ResNetConfig, using rng: inout RandomGenerator) throws {
    try c.validate()
    resnetConfig = c
    conv1 =
      c.stem == .imagenet
      ? Conv2d(c.inChannels, c.width, kernelSize: 7, stride: 2, padding: 3, bias: false, kaimingFanOut: true, using: &rng)
      : Conv2d(c.inChannels, c.width, kernelSize: 3, stride: 1, padding: 1, bias: false, kaimingFanOut: true, using: &rng)
    bn1 = BatchNorm(c.width)
    var stages: [Stage] = []
    var residualBlocks: [any ResidualBlock] = []
    var inC = c.width
    for (i, count) in c.layers.enumerated() {
      let planes = c.width << i
      var modules: [Module] = []
      var apply: [(Tensor) throws -> Tensor] = []
      for j in 0..<count {
        let stride = j == 0 && i > 0 ? 2 : 1
        switch c.block {
        case .basic:
          let b = BasicBlock(inC, planes, stride: stride, using: &rng)
          modules.append(b)
          residualBlocks.append(b)
          apply.append { try b($0) }
        case .bottleneck:
          let b = Bottleneck(inC, planes, stride: stride, using: &rng)
          modules.append(b)
          residualBlocks.append(b)
          apply.append { try b($0) }
        }
        inC = planes * c.expansion
      }
      stages.append(Stage(modules, apply))
    }
    self.stages = stages
    self.residualBlocks = residualBlocks
    super.init()
    register(child: "conv1", conv1)
    register(child: "bn1", bn1)
    for (i, s) in stages.enumerated() { register(child: "layer\(i + 1)", s) }
  }

  public override var typeName: String { "ResNet" }

  public func setDropPath(maximum: Float, seed: UInt64) {
    for (block, path) in zip(residualBlocks, DropPath.rising(to: maximum, over: residualBlocks.count, seed: seed)) {
      block.dropPath = path
    }
  }

  private func stem(_ images: Tensor) throws -> Tensor {
    guard images.rank == 4, images.shape[1] == resnetConfig.inChannels else {
      throw BackboneError("\(resnetConfig.name): expected images [B, \(resnetConfig.inChannels), H, W], got \(images.shape)")
    }
    let x = try bn1(conv1(images), relu: true)
    return resnetConfig.stem == .imagenet ? try x.maxPool2d(kernel: 3, stride: 2, padding: 1) : x
  }

  /// Global average pool [B, C, H, W] → [B, C].
  private func pool(_ x: Tensor) throws -> Tensor {
    try x.mean(axes: [2, 3])
  }

  public func features(_ images: Tensor) throws -> Tensor {
    var x = try stem(images)
    for s in stages { x = try s(x) }
    return try pool(x)
  }

  public func featuresByDepth(_ images: Tensor) throws -> [(name: String, features: Tensor)] {
    var x = try stem(images)
    var out: [(String, Tensor)] = []
    for (i, s) in stages.enumerated() {
      x = try s(x)
      out.append(("layer\(i + 1)", try pool(x)))
    }
    return out
  }
}
