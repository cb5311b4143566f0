import Autograd
import Backbones
import NN
import Support
import Vision

/// Contrastive pairs: SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive
/// Learning of Visual Representations", https://arxiv.org/abs/2002.05709).
///
/// Two augmented views of each image go through the backbone and an MLP projection head;
/// NT-Xent pulls the two views of an image together and pushes the other 2N − 2 apart.
public final class Contrastive: RegisteredTask, @unchecked Sendable {
  public struct Settings: TaskSettings, Equatable {
    public var temperature: Float = 0.2
    public var projectionHidden: Int = 512
    public var projectionOutput: Int = 128
    /// Two draws of one recipe (Appendix A; no solarization).
    public var augmentation = ViewAugmentation()
    public var mean: [Float] = [0.5]
    public var std: [Float] = [0.5]
    public init() {}

    public static let section = "simclr"
    public static let options: [SettingOption<Settings>] =
      [
        .temperature(\.temperature, "NT-Xent softmax temperature (§B.9: 0.1–0.5)"),
        .width("projection_hidden", \.projectionHidden, "projection head's hidden width"),
        .width("projection_output", \.projectionOutput, "projection head's output width"),
      ] + ViewAugmentation.options(\.augmentation) + [.inputMean(\.mean), .inputStd(\.std)]
  }

  public let settings: Settings
  public let heads: Module
  public var inputNormalization: InputNormalization { InputNormalization(mean: settings.mean, std: settings.std) }
  let projection: MLPHead
  let views: TwoViewSampler

  /// Two views at the backbone's size.
  public static func backboneInputs(_ settings: Settings, backbone: BackboneConfig) -> [Int] {
    TwoViewSampler.backboneInputs(backbone)
  }

  public init(_ settings: Settings, backbone: any Backbone, using rng: inout RandomGenerator) throws {
    try settings.validate()
    self.settings = settings
    views = try TwoViewSampler(settings.augmentation, mean: settings.mean, std: settings.std, backbone: backbone.config)
    // Projection head g(·): Linear → BN → ReLU → Linear (SimCLR v1/v2, lightly's head).
    projection = MLPHead(
      input: backbone.featureCount, hidden: settings.projectionHidden, output: settings.projectionOutput,
      hiddenBias: false, using: &rng)
    heads = Module()
    projection.register(in: heads, prefix: "projection_")
  }

  public func sample(_ image: Image, using rng: inout RandomGenerator) throws -> TaskSample {
    views.sample(image, using: &rng)
  }

  func project(_ features: Tensor) throws -> Tensor {
    try projection(features)
  }

  public func loss(_ batch: TaskBatch, backbone: any Backbone) throws -> TaskOutput {
    // Both views in one pass: batch statistics over all 2n images.
    let both = try Tensor.concat(batch.views, axis: 0)
    let z = try project(backbone.features(both))  // [2n, D]: n first views, then n second views
    // The negatives come from the global batch: every process's projections. This
    // process's anchors are its own n images.
    let views = try batch.globalViews(z)
    let (loss, top1) = try ntXentLoss(views[0], views[1], temperature: settings.temperature, anchors: batch.globalRows)
    return TaskOutput(loss: loss, metrics: [("contrastive_top1", top1)])
  }
}
