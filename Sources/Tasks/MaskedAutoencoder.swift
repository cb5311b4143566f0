import Autograd
import Backbones
import Foundation
import NN
import Support
import Vision

/// Masked-patch reconstruction: MAE (He et al. 2021, "Masked Autoencoders Are Scalable
/// Vision Learners", https://arxiv.org/abs/2111.06377).
///
/// Each image's patches are masked at random (75% by default); the ViT encoder sees only
/// the visible ones; a light decoder with a shared mask token and fixed sin-cos position
/// embeddings restores the full sequence and predicts the pixels of every patch; the
/// loss is the MSE on the masked patches only (optionally against per-patch normalized
/// targets, `norm_pix_loss`). Decoder names follow MAE's code (`decoder_embed`,
/// `mask_token`, `decoder_blocks`, `decoder_norm`, `decoder_pred`).
public final class MaskedAutoencoder: RegisteredTask, @unchecked Sendable {
  public struct Settings: TaskSettings, Equatable {
    public var maskRatio: Double = 0.75
    public var decoderWidth: Int = 128
    public var decoderDepth: Int = 2
    public var decoderHeads: Int = 4
    public var normalizePixelTargets: Bool = true
    /// MAE's augmentation: random resized crop with this scale range, and flips.
    public var cropScale: [Double] = [0.2, 1]
    public var flip: Float = 0.5
    public var mean: [Float] = [0.5]
    public var std: [Float] = [0.5]
    public init() {}

    public static let section = "mae"
    public static let options: [SettingOption<Settings>] = [
      .number("mask_ratio", \.maskRatio, in: 0...1, openBelow: true, openAbove: true, "share of the patches masked (§4: 75%)"),
      .integer("decoder_width", \.decoderWidth, in: 4...maximumTaskWidth, "decoder embedding width (a multiple of 4 and of the heads)"),
      .integer("decoder_depth", \.decoderDepth, in: 1...64, "decoder transformer blocks"),
      .integer("decoder_heads", \.decoderHeads, in: 1...maximumTaskWidth, "decoder attention heads"),
      .flag("norm_pix_loss", \.normalizePixelTargets, "targets normalized per patch (mean 0, std 1), as MAE's default"),
      .cropScale(\.cropScale), .flip(\.flip), .inputMean(\.mean), .inputStd(\.std),
    ]

    public func checkTogether() throws {
      guard decoderWidth % 4 == 0, decoderHeads <= decoderWidth, decoderWidth % decoderHeads == 0 else {
        throw Self.error("decoder_width", "\(decoderWidth) must be a multiple of 4 and of decoder_heads (\(decoderHeads))")
      }
    }
  }

  public let settings: Settings
  public let heads: Module
  public var inputNormalization: InputNormalization { InputNormalization(mean: settings.mean, std: settings.std) }
  let vit: ViTConfig
  let decoderEmbed: Linear
  let maskToken: Tensor
  let decoderPositions: Tensor
  let decoderBlocks: [TransformerBlock]
  let decoderNorm: LayerNorm
  let decoderPrediction: Linear
  let augment: Compose
  let input: InputPreparation
  let keepCount: Int

  /// One view at the backbone's size (every patch is embedded; the encoder then keeps some).
  public static func backboneInputs(_ settings: Settings, backbone: BackboneConfig) -> [Int] { [backbone.imageSize] }

  public init(_ settings: Settings, backbone: any Backbone, using rng: inout RandomGenerator) throws {
    guard case .vit(let vit) = backbone.config else {
      throw TaskError("mae needs a ViT backbone (it encodes visible patches only), got \(backbone.config.name)")
    }
    try settings.validate()
    self.settings = settings
    self.vit = vit
    keepCount = max(1, Int(Double(vit.patchCount) * (1 - settings.maskRatio)))
    input = try InputPreparation(channels: vit.inChannels, mean: settings.mean, std: settings.std)
    augment = Compose([
      try RandomResizedCrop(size: vit.imageSize, scale: settings.cropScale[0]...settings.cropScale[1]),
      try RandomHorizontalFlip(p: settings.flip),
      input.normalize,
    ])
    let d = settings.decoderWidth
    decoderEmbed = Linear(vit.width, d, initialization: .xavierUniform, using: &rng)
    maskToken = Tensor.randn([1, 1, d], std: 0.02, using: &rng)
    decoderPositions = sinCosPositionEmbedding(width: d, grid: vit.gridSize, classToken: true)
    decoderBlocks = (0..<settings.decoderDepth).map { _ in
      TransformerBlock(width: d, heads: settings.decoderHeads, mlpHidden: 4 * d, initialization: .xavierUniform, using: &rng)
    }
    decoderNorm = LayerNorm(d)
    decoderPrediction = Linear(d, vit.patchSize * vit.patchSize * vit.inChannels, initialization: .xavierUniform, using: &rng)
    heads = Module()
    heads.register(parameter: "mask_token", maskToken)
    heads.register(buffer: "decoder_pos_embed", decoderPositions)
    heads.register(child: "decoder_embed", decoderEmbed)
    let blocks = Module()
    for (i, b) in decoderBlocks.enumerated() { blocks.register(child: String(i), b) }
    heads.register(child: "decoder_blocks", blocks)
    heads.register(child: "decoder_norm", decoderNorm)
    heads.register(child: "decoder_pred", decoderPrediction)
  }

  /// The augmented image and its visible patches: a random subset of `keepCount`
  /// patch indices (sorted), drawn per sample.
  public func sample(_ image: Image, using rng: inout RandomGenerator) throws -> TaskSample {
    let view = augment(input.float(image, using: &rng), using: &rng)
    let keep = Array(rng.permutation(vit.patchCount).prefix(keepCount)).sorted()
    return TaskSample(views: [view], indices: keep)
  }

  /// The mask [B, N]: 1 where a patch was hidden from the encoder.
  func mask(_ batch: TaskBatch) -> Tensor {
    let n = vit.patchCount
    let m = Tensor.ones([batch.count, n])
    for (b, keep) in batch.indices.enumerated() {
      for k in keep { m.data[b * n + k] = 0 }
    }
    return m
  }

  /// Pixel predictions for every patch [B, N, p²·C].
  func predict(_ batch: TaskBatch, vitBackbone: VisionTransformer) throws -> Tensor {
    let images = batch.views[0]
    let b = batch.count, n = vit.patchCount, d = settings.decoderWidth
    let keep = try IndexTensor(shape: [b, keepCount], batch.indices.flatMap { $0 })
    let (encoded, _) = try vitBackbone.encode(patchTokens: vitBackbone.embedPatches(images), keep: keep)
    let x = try decoderEmbed(encoded)  // [B, 1 + K, d]
    // Restore the full sequence: mask tokens everywhere, visible tokens at their places.
    let visible = try x.sliced(axis: 1, 1..<(1 + keepCount))
    var positions = [Int](repeating: 0, count: b * keepCount * d)
    for i in 0..<(b * keepCount) {
      for j in 0..<d { positions[i * d + j] = keep.values[i] }
    }
    let full = try maskToken.expanded(to: [b, n, d]).scattering(
      axis: 1, index: IndexTensor(shape: [b, keepCount, d], positions), source: visible)
    var h = try Tensor.concat([x.sliced(axis: 1, 0..<1), full], axis: 1) + decoderPositions
    for block in decoderBlocks { h = try block(h) }
    let prediction = try decoderPrediction(decoderNorm(h))
    return try prediction.sliced(axis: 1, 1..<(1 + n))
  }

  func vitBackbone(_ backbone: any Backbone) throws -> VisionTransformer {
    guard let v = backbone as? VisionTransformer else { throw TaskError("mae needs a ViT backbone") }
    return v
  }

  public func loss(_ batch: TaskBatch, backbone: any Backbone) throws -> TaskOutput {
    let prediction = try predict(batch, vitBackbone: vitBackbone(backbone))
    let target = try patchify(batch.views[0], patchSize: vit.patchSize)
    let loss = try maskedReconstructionLoss(
      prediction: prediction, target: target, mask: mask(batch), normalizeTarget: settings.normalizePixelTargets)
    return TaskOutput(loss: loss)
  }

  /// The images (and masks) every reconstruction grid shows: the first ones the task was
  /// asked to draw, kept so that successive grids show the same images improving.
  private var artifactImages: TaskBatch?

  /// A PNG grid, one row per image (up to 8): original | masked | reconstruction (the
  /// visible patches pasted over the prediction, as in MAE's figures).
  public func writeArtifacts(_ batch: TaskBatch, backbone: any Backbone, directory: String, step: Int) throws -> [String] {
    if artifactImages == nil {
      let rows = min(8, batch.count)
      artifactImages = TaskBatch(
        views: [try batch.views[0].sliced(axis: 0, 0..<rows).copy()], labels: [],
        indices: Array(batch.indices.prefix(rows)), count: rows)
    }
    let sub = artifactImages!
    let rows = sub.count
    let wasTraining = backbone.isTraining
    backbone.eval()
    heads.eval()
    defer {
      backbone.train(wasTraining)
      heads.train(wasTraining)
    }
    var prediction = try withoutGradients { try predict(sub, vitBackbone: vitBackbone(backbone)) }
    let target = try patchify(sub.views[0], patchSize: vit.patchSize)
    if settings.normalizePixelTargets {
      // Undo the per-patch normalization with the true patches' statistics.
      let mean = try target.mean(axis: -1, keepDims: true)
      let std = try (target.variance(axes: [-1], correction: 1, keepDims: true) + 1e-6).sqrt()
      prediction = try prediction * std + mean
    }
    let m = try mask(sub).unsqueezed(-1)
    let masked = try target * (1 - m)
    let pasted = try target * (1 - m) + prediction * m
    let p = vit.patchSize, c = vit.inChannels
    let images = try [target, masked, pasted].map { try unpatchify($0, patchSize: p, channels: c) }
    // Back to [0, 1] pixels: undo the input normalization.
    let inverse = input.normalize.inverse
    // Small images are enlarged (nearest neighbour) so the grid is readable.
    let s = vit.imageSize, zoom = max(1, 96 / s), cell = s * zoom, gap = 2
    var grid = Image(width: 3 * cell + 2 * gap, height: rows * cell + (rows - 1) * gap, channels: c, filledWith: 255)
    for r in 0..<rows {
      for (col, t) in images.enumerated() {
        let one = try t.sliced(axis: 0, r..<(r + 1))
        var rng = RandomGenerator(seed: 0)
        let img = inverse(FloatImage(channels: c, height: s, width: s, pixels: one.scalars), using: &rng).toImage()
        for y in 0..<cell {
          for x in 0..<cell {
            for ch in 0..<c {
              grid[col * (cell + gap) + x, r * (cell + gap) + y, ch] = img[x / zoom, y / zoom, ch]
            }
          }
        }
      }
    }
    let path = (directory as NSString).appendingPathComponent(String(format: "reconstruction-%07ld.png", step))
    try PNG.write(grid, to: path)
    return [path]
  }
}
