import Autograd
import Backbones
import NN
import Optimization
import Support
import Vision

/// Bootstrap Your Own Latent (Grill et al. 2020, "Bootstrap your own latent: A new
/// approach to self-supervised learning", https://arxiv.org/abs/2006.07733).
///
/// The online network (backbone, projector, predictor) predicts the target network's
/// projection of another view of the same image; the target (backbone + projector) is an
/// exponential moving average of the online one and gets no gradient (§3.1). No negatives:
/// the predictor and the slowly moving target keep the representation from collapsing.
public final class BYOL: RegisteredTask, @unchecked Sendable {
  public struct Settings: TaskSettings, Equatable {
    // The paper's heads are 4096 → 256 on ResNet-50's 2048 features (§3.3). The
    // backbones here give 192–256 features, 8–10× fewer, on 28–32 px images: hidden 512
    // keeps the paper's hidden = 2 × features, 128 outputs match SimCLR's head here (a
    // fair comparison), and the heads stay a small share of a CPU step.
    public var projectionHidden: Int = 512
    public var projectionOutput: Int = 128
    public var predictorHidden: Int = 512
    /// τ_base of the target's cosine schedule, τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2 (§3.3).
    public var momentum: Double = 0.996
    /// The augmentations of Appendix B, Table 6: blur and solarization differ per view.
    public var augmentation = ViewAugmentation.asymmetric
    public var mean: [Float] = [0.5]
    public var std: [Float] = [0.5]
    public init() {}

    public static let section = "byol"
    public static let options: [SettingOption<Settings>] =
      [
        .width("projection_hidden", \.projectionHidden, "projector's hidden width"),
        .width("projection_output", \.projectionOutput, "projector's (and predictor's) output width"),
        .width("predictor_hidden", \.predictorHidden, "predictor's hidden width"),
        // The paper's range is [0.9, 1).
        .targetMomentum(\.momentum, "target momentum at the start, rising to 1 along a cosine (§3.3: 0.996)"),
      ] + ViewAugmentation.options(\.augmentation) + [.inputMean(\.mean), .inputStd(\.std)]
  }

  public let settings: Settings
  public let heads = Module()
  public var inputNormalization: InputNormalization { InputNormalization(mean: settings.mean, std: settings.std) }
  let projector: MLPHead
  let predictor: MLPHead
  let target: MomentumEncoder
  let views: TwoViewSampler

  /// Two views at the backbone's size (the target's pass keeps no activations).
  public static func backboneInputs(_ settings: Settings, backbone: BackboneConfig) -> [Int] {
    TwoViewSampler.backboneInputs(backbone)
  }

  public init(_ settings: Settings, backbone: any Backbone, using rng: inout RandomGenerator) throws {
    try settings.validate()
    self.settings = settings
    views = try TwoViewSampler(settings.augmentation, mean: settings.mean, std: settings.std, backbone: backbone.config)
    // Projector and predictor: Linear → BN → ReLU → Linear (§3.3), [B, F] → [B, D] → [B, D].
    let head = { (input: Int, hidden: Int, rng: inout RandomGenerator) in
      MLPHead(input: input, hidden: hidden, output: settings.projectionOutput, hiddenBias: false, using: &rng)
    }
    projector = head(backbone.featureCount, settings.projectionHidden, &rng)
    predictor = head(settings.projectionOutput, settings.predictorHidden, &rng)
    let onlineProjector = projector.asModule()
    target = try MomentumEncoder(
      online: backbone, onlineProjector: onlineProjector,
      projector: head(backbone.featureCount, settings.projectionHidden, &rng), using: &rng)
    heads.register(child: "projector", onlineProjector)
    heads.register(child: "predictor", predictor.asModule())
    heads.register(child: "target", target.module)
  }

  public func sample(_ image: Image, using rng: inout RandomGenerator) throws -> TaskSample {
    views.sample(image, using: &rng)
  }

  public func loss(_ batch: TaskBatch, backbone: any Backbone) throws -> TaskOutput {
    let n = batch.count
    // Both views in one pass, for the online and for the target network: [2n, …], the n
    // first views then the n second views (BatchNorm statistics over all 2n).
    let both = try Tensor.concat(batch.views, axis: 0)
    let q = try predictor(projector(backbone.features(both)))  // [2n, D]
    let z = try target(both)  // [2n, D], no gradient
    let first = 0..<n, second = n..<(2 * n)
    // Symmetrized (§3.1): view 1 predicts the target's view 2, and view 2 view 1.
    let a = try normalizedMSELoss(q.sliced(axis: 0, first), z.sliced(axis: 0, second))
    let b = try normalizedMSELoss(q.sliced(axis: 0, second), z.sliced(axis: 0, first))
    return TaskOutput(loss: try a.loss + b.loss, metrics: [("byol_cosine", (a.cosine + b.cosine) / 2)])
  }

  /// The target follows the online network after each optimizer step, with the momentum
  /// of the cosine schedule at the run's progress (§3.3).
  public func afterStep(_ progress: TrainingProgress) throws {
    target.update(momentum: cosineMomentum(base: settings.momentum, fraction: progress.fraction))
  }
}
