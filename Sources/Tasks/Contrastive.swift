import Autograd
import Backbones
import NN
import Vision

/// Contrastive pairs: SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive
/// Learning of Visual Representations", https://arxiv.org/abs/2002.05709).
///
/// Two augmented views of each image go through the backbone and an MLP projection head;
/// NT-Xent pulls the two views of an image together and pushes the other 2N − 2 apart.
public final class Contrastive: PretextTask, @unchecked Sendable {
  public struct Settings: Codable, Sendable, Equatable {
    public var temperature: Float = 0.2
    public var projectionHidden: Int = 512
    public var projectionOutput: Int = 128
    /// Random resized crop scale range (of the image area).
    public var cropScale: [Double] = [0.08, 1]
    public var flip: Float = 0.5
    public var colorJitter: [Float] = [0.4, 0.4, 0.4, 0.1]
    public var colorJitterProbability: Float = 0.8
    public var grayscaleProbability: Float = 0.2
    public var blurProbability: Float = 0.5
    public var blurSigma: [Float] = [0.1, 2.0]
    public var mean: [Float] = [0.5]
    public var std: [Float] = [0.5]
    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
      case temperature, projectionHidden = "projection_hidden", projectionOutput = "projection_output"
      case cropScale = "crop_scale", flip, colorJitter = "color_jitter"
      case colorJitterProbability = "color_jitter_p", grayscaleProbability = "grayscale_p"
      case blurProbability = "blur_p", blurSigma = "blur_sigma", mean, std
    }

    public init(from decoder: Decoder) throws {
      try decoder.rejectUnknownKeys(CodingKeys.self, allowing: ["name"])
      let c = try decoder.container(keyedBy: CodingKeys.self)
      let d = Self()
      temperature = try c.value(.temperature, or: d.temperature)
      projectionHidden = try c.value(.projectionHidden, or: d.projectionHidden)
      projectionOutput = try c.value(.projectionOutput, or: d.projectionOutput)
      cropScale = try c.value(.cropScale, or: d.cropScale)
      flip = try c.value(.flip, or: d.flip)
      colorJitter = try c.value(.colorJitter, or: d.colorJitter)
      colorJitterProbability = try c.value(.colorJitterProbability, or: d.colorJitterProbability)
      grayscaleProbability = try c.value(.grayscaleProbability, or: d.grayscaleProbability)
      blurProbability = try c.value(.blurProbability, or: d.blurProbability)
      blurSigma = try c.value(.blurSigma, or: d.blurSigma)
      mean = try c.value(.mean, or: d.mean)
      std = try c.value(.std, or: d.std)
    }
  }

  public let name = "simclr"
  public let settings: Settings
  public let heads: Module
  public var inputNormalization: InputNormalization { InputNormalization(mean: settings.mean, std: settings.std) }
  let projection: MLPHead
  let views: MultiView
  let input: InputPreparation

  /// Two views at the backbone's size.
  static func backboneInputs(_ settings: Settings, backbone: BackboneConfig) -> [Int] {
    [backbone.imageSize, backbone.imageSize]
  }

  public init(_ settings: Settings, backbone: any Backbone, using rng: inout RandomGenerator) throws {
    let augmentation = ViewAugmentation(
      cropScale: settings.cropScale, flip: settings.flip, colorJitter: settings.colorJitter,
      colorJitterProbability: settings.colorJitterProbability, grayscaleProbability: settings.grayscaleProbability,
      blurProbability: [settings.blurProbability, settings.blurProbability], blurSigma: settings.blurSigma)
    let r = SettingsRanges(task: "simclr")
    // A temperature beyond 100 flattens every similarity to the same logit.
    try r.check("temperature", settings.temperature, in: 0...100, openBelow: true)
    try r.check("projection_hidden", settings.projectionHidden, in: 1...maximumTaskWidth)
    try r.check("projection_output", settings.projectionOutput, in: 1...maximumTaskWidth)
    try augmentation.check(task: "simclr")
    try r.check("mean", settings.mean, in: -1000...1000)
    try r.check("std", settings.std, in: 0...1000, openBelow: true)
    self.settings = settings
    input = try InputPreparation(channels: backbone.config.inChannels, mean: settings.mean, std: settings.std)
    // Two draws of one recipe (no solarization).
    views = try augmentation.views(size: backbone.config.imageSize, normalize: input.normalize)
    // Projection head g(·): Linear → BN → ReLU → Linear (SimCLR v1/v2, lightly's head).
    projection = MLPHead(
      input: backbone.featureCount, hidden: settings.projectionHidden, output: settings.projectionOutput,
      hiddenBias: false, using: &rng)
    heads = Module()
    projection.register(in: heads, prefix: "projection_")
  }

  public func sample(_ image: Image, using rng: inout RandomGenerator) throws -> TaskSample {
    TaskSample(views: views(input.float(image, using: &rng), using: &rng))
  }

  func project(_ features: Tensor) throws -> Tensor {
    try projection(features)
  }

  public func loss(_ batch: TaskBatch, backbone: any Backbone) throws -> TaskOutput {
    // Both views in one pass: batch statistics over all 2n images.
    let both = try Tensor.concat(batch.views, axis: 0)
    let z = try project(backbone.features(both))  // [2n, D]: n first views, then n second views
    // The negatives come from the global batch: every process's projections, gathered
    // ([R·2n, D] in rank order) and put back in the one-process layout (all first views
    // in global sample order, then all second views). This process's anchors are its own
    // n images; the gradient flows back to its own rows (see `allGathered`).
    let group = batch.group
    let n = batch.count
    let all = try z.allGathered(over: group)
    let views = try [0, n].map { offset in
      try Tensor.concat((0..<group.size).map { r in try all.sliced(axis: 0, (r * 2 * n + offset)..<(r * 2 * n + offset + n)) }, axis: 0)
    }
    let (loss, top1) = try ntXentLoss(
      views[0], views[1], temperature: settings.temperature, anchors: (group.rank * n)..<((group.rank + 1) * n))
    return TaskOutput(loss: loss, metrics: [("contrastive_top1", top1)])
  }
}
