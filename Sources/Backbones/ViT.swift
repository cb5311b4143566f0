import Autograd
import NN

// Vision Transformer: Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021,
// https://arxiv.org/abs/2010.11929 — with timm's `VisionTransformer` parameter names, so
// weights move between Pretext and timm unchanged.

public struct ViTConfig: Codable, Sendable, Equatable {
  public var name: String
  public var imageSize: Int
  public var patchSize: Int
  public var inChannels: Int
  public var width: Int
  public var depth: Int
  public var heads: Int
  public var mlpRatio: Double
  /// Fixed 2-D sin-cos position embedding (MAE) instead of a learned one.
  public var fixedPositionEmbedding: Bool
  /// Which features `features` returns.
  public var pooling: Pooling

  public enum Pooling: String, Codable, Sendable { case classToken = "token", mean = "avg" }

  public init(
    name: String = "vit", imageSize: Int, patchSize: Int, inChannels: Int = 3, width: Int, depth: Int, heads: Int,
    mlpRatio: Double = 4, fixedPositionEmbedding: Bool = false, pooling: Pooling = .classToken
  ) {
    self.name = name
    self.imageSize = imageSize
    self.patchSize = patchSize
    self.inChannels = inChannels
    self.width = width
    self.depth = depth
    self.heads = heads
    self.mlpRatio = mlpRatio
    self.fixedPositionEmbedding = fixedPositionEmbedding
    self.pooling = pooling
  }

  public var gridSize: Int { imageSize / patchSize }
  public var patchCount: Int { gridSize * gridSize }
  public var mlpHidden: Int { Int(Double(width) * mlpRatio) }

  func validate() throws {
    guard imageSize > 0, patchSize > 0, imageSize % patchSize == 0 else {
      throw BackboneError("\(name): image size \(imageSize) must be a positive multiple of the patch size \(patchSize)")
    }
    guard width > 0, heads > 0, width % heads == 0 else {
      throw BackboneError("\(name): width \(width) must be divisible by the number of heads \(heads)")
    }
    guard width % 4 == 0 else {
      throw BackboneError("\(name): width \(width) must be divisible by 4 (the 2-D sin-cos position embedding)")
    }
    guard depth > 0, inChannels == 1 || inChannels == 3, mlpRatio > 0 else {
      throw BackboneError("\(name): depth must be positive, input channels 1 or 3, MLP ratio positive")
    }
  }
}

/// Patch embedding: a convolution with kernel = stride = patch size (`patch_embed.proj`).
public final class PatchEmbedding: Module {
  public let proj: Conv2d
  public init(_ c: ViTConfig, using rng: inout RandomGenerator) {
    proj = Conv2d(c.inChannels, c.width, kernelSize: c.patchSize, stride: c.patchSize, using: &rng)
    super.init()
    register(child: "proj", proj)
  }
  public override var typeName: String { "PatchEmbed" }

  /// images [B, C, H, W] → patch tokens [B, N, width] (row-major patch order).
  public func callAsFunction(_ images: Tensor) throws -> Tensor {
    let y = try proj(images)  // [B, width, h, w]
    return try y.flattened(from: 2).transposed(1, 2)
  }
}

/// A pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)).
public final class TransformerBlock: Module {
  public let norm1: LayerNorm
  public let attn: MultiHeadAttention
  public let norm2: LayerNorm
  public let mlp: MLP

  public init(width: Int, heads: Int, mlpHidden: Int, initialization: Linear.Initialization, using rng: inout RandomGenerator) {
    norm1 = LayerNorm(width)
    attn = MultiHeadAttention(dim: width, heads: heads, initialization: initialization, using: &rng)
    norm2 = LayerNorm(width)
    mlp = MLP(dim: width, hidden: mlpHidden, initialization: initialization, using: &rng)
    super.init()
    register(child: "norm1", norm1)
    register(child: "attn", attn)
    register(child: "norm2", norm2)
    register(child: "mlp", mlp)
  }
  public override var typeName: String { "Block" }

  /// Drops the attention and MLP branches per sample in training (`DropPath`; off by
  /// default, set by `setDropPath`).
  public var dropPath = DropPath()

  /// tokens [B, T, width] → [B, T, width].
  public func callAsFunction(_ x: Tensor) throws -> Tensor {
    let h = try x + dropPath(attn(norm1(x)), training: isTraining)
    return try h + dropPath(mlp(norm2(h)), training: isTraining)
  }
}

public final class VisionTransformer: Module, Backbone {
  public let vitConfig: ViTConfig
  public let patchEmbed: PatchEmbedding
  /// [1, 1, width]
  public let classToken: Tensor
  /// [1, 1 + N, width] (the class token's position first, as timm).
  public let positionEmbedding: Tensor
  public let blocks: [TransformerBlock]
  public let norm: LayerNorm

  public var config: BackboneConfig { .vit(vitConfig) }
  public var featureCount: Int { vitConfig.width }

  public init(_ c: ViTConfig, using rng: inout RandomGenerator) throws {
    try c.validate()
    vitConfig = c
    patchEmbed = PatchEmbedding(c, using: &rng)
    // timm: cls_token ~ N(0, 1e-6), pos_embed ~ trunc_normal(0.02), linear layers
    // trunc_normal(0.02) with zero bias.
    classToken = Tensor.randn([1, 1, c.width], std: 1e-6, using: &rng)
    positionEmbedding =
      c.fixedPositionEmbedding
      ? sinCosPositionEmbedding(width: c.width, grid: c.gridSize, classToken: true)
      : Initializer.truncatedNormal([1, 1 + c.patchCount, c.width], std: 0.02, using: &rng)
    var blocks: [TransformerBlock] = []
    for _ in 0..<c.depth {
      blocks.append(
        TransformerBlock(
          width: c.width, heads: c.heads, mlpHidden: c.mlpHidden, initialization: .truncatedNormal(std: 0.02),
          using: &rng))
    }
    self.blocks = blocks
    norm = LayerNorm(c.width)
    super.init()
    register(parameter: "cls_token", classToken)
    if c.fixedPositionEmbedding {
      register(buffer: "pos_embed", positionEmbedding)
    } else {
      register(parameter: "pos_embed", positionEmbedding)
    }
    register(child: "patch_embed", patchEmbed)
    let list = Module()
    for (i, b) in blocks.enumerated() { list.register(child: String(i), b) }
    register(child: "blocks", list)
    register(child: "norm", norm)
  }

  public override var typeName: String { "VisionTransformer" }

  public func setDropPath(maximum: Float, seed: UInt64) {
    for (block, path) in zip(blocks, DropPath.rising(to: maximum, over: blocks.count, seed: seed)) {
      block.dropPath = path
    }
  }

  /// Patch tokens with their position embeddings added: [B, N, width].
  public func embedPatches(_ images: Tensor) throws -> Tensor {
    guard images.rank == 4, images.shape[1] == vitConfig.inChannels,
      images.shape[2] == vitConfig.imageSize, images.shape[3] == vitConfig.imageSize
    else {
      throw BackboneError(
        "\(vitConfig.name): expected images [B, \(vitConfig.inChannels), \(vitConfig.imageSize), \(vitConfig.imageSize)], got \(images.shape)")
    }
    let tokens = try patchEmbed(images)
    let pos = try positionEmbedding.sliced(axis: 1, 1..<(1 + vitConfig.patchCount))
    return try tokens + pos
  }

  /// Runs the transformer on patch tokens (already position-embedded), optionally only
  /// the patches `keep` [B, K] per sample (MAE's visible patches), with the class token
  /// prepended. Returns the normalized tokens [B, 1 + K, width] and, if asked, each
  /// block's output (before the final norm).
  public func encode(
    patchTokens: Tensor, keep: IndexTensor? = nil, collectBlocks: Bool = false
  ) throws -> (tokens: Tensor, blockOutputs: [Tensor]) {
    var x = patchTokens
    let b = x.shape[0], w = vitConfig.width
    if let keep {
      guard keep.shape.count == 2, keep.shape[0] == b else {
        throw BackboneError("\(vitConfig.name): keep indices must be [B, K], got \(keep.shape) for batch \(b)")
      }
      // Repeat each index across the width to gather whole tokens.
      let k = keep.shape[1]
      var expanded = [Int](repeating: 0, count: b * k * w)
      for i in 0..<(b * k) {
        for j in 0..<w { expanded[i * w + j] = keep.values[i] }
      }
      x = try x.gather(axis: 1, index: IndexTensor(shape: [b, k, w], expanded))
    }
    let cls = try (classToken + positionEmbedding.sliced(axis: 1, 0..<1)).expanded(to: [b, 1, w])
    x = try Tensor.concat([cls, x], axis: 1)
    var outputs: [Tensor] = []
    for block in blocks {
      x = try block(x)
      if collectBlocks { outputs.append(x) }
    }
    return (try norm(x), outputs)
  }

  /// Pools tokens [B, T, width] (class token first) as configured.
  public func pool(_ tokens: Tensor) throws -> Tensor {
    switch vitConfig.pooling {
    case .classToken: return try tokens.sliced(axis: 1, 0..<1).squeezed(1)
    case .mean: return try tokens.sliced(axis: 1, 1..<tokens.shape[1]).mean(axis: 1)
    }
  }

  public func features(_ images: Tensor) throws -> Tensor {
    try pool(encode(patchTokens: embedPatches(images)).tokens)
  }

  public func featuresByDepth(_ images: Tensor) throws -> [(name: String, features: Tensor)] {
    let (tokens, outputs) = try encode(patchTokens: embedPatches(images), collectBlocks: true)
    var result: [(String, Tensor)] = []
    for (i, out) in outputs.enumerated().dropLast() {
      // Intermediate blocks: both pooled forms are common; the mean of patch tokens is
      // the more robust probe input before the final norm.
      result.append(("blocks.\(i)", try out.sliced(axis: 1, 1..<out.shape[1]).mean(axis: 1)))
    }
    result.append(("norm", try pool(tokens)))
    return result
  }
}

/// Fixed 2-D sin-cos position embedding (MAE's `get_2d_sincos_pos_embed`): half the
/// width encodes the row, half the column, each with sin/cos at geometric frequencies
/// 1/10000^(i/(width/4)). With `classToken`, a zero row is prepended.
public func sinCosPositionEmbedding(width: Int, grid: Int, classToken: Bool) -> Tensor {
  precondition(width % 4 == 0, "sin-cos position embedding needs a width divisible by 4")
  let quarter = width / 4
  let rows = grid * grid + (classToken ? 1 : 0)
  let t = Tensor.zeros([1, rows, width])
  for gy in 0..<grid {
    for gx in 0..<grid {
      let row = (classToken ? 1 : 0) + gy * grid + gx
      let p = t.data + row * width
      // MAE's meshgrid puts the column (w) coordinate in the first half.
      for (half, pos) in [(0, gx), (1, gy)] {
        for i in 0..<quarter {
          let omega = 1 / Foundation.pow(10000.0, Double(i) / Double(quarter))
          let v = Double(pos) * omega
          p[half * 2 * quarter + i] = Float(Foundation.sin(v))
          p[half * 2 * quarter + quarter + i] = Float(Foundation.cos(v))
        }
      }
    }
  }
  return t
}

import Foundation
