import Autograd
import Backbones
import NN
import Optimization
import Support
import Vision

/// MoCo v3 (Chen, Xie & He 2021, "An Empirical Study of Training Self-Supervised Vision
/// Transformers", https://arxiv.org/abs/2104.02057).
///
/// Queries from the online network (backbone, projector, predictor) are contrasted with
/// keys from a momentum encoder (backbone + projector, the online ones' moving average,
/// no gradient): each query's positive is the key of the other view of its image, its
/// negatives the keys of every other image of the global batch — no memory queue (§3,
/// Algorithm 1). The loss is symmetrized and scaled by 2τ.
public final class MoCoV3: RegisteredTask, @unchecked Sendable {
  public struct Settings: TaskSettings, Equatable {
    /// τ: 0.2 in the ViT recipe (the default, which also suits a ResNet at this batch
    /// size); the paper's ResNet-50 recipe uses 1.0.
    public var temperature: Float = 0.2
    // The paper's heads are 4096 hidden, 256 out on 768–2048 features. The backbones
    // here give 192–256 features on 28–32 px images: hidden 512 and 128 outputs (SimCLR's
    // head here, for a fair comparison) keep the heads a small share of a CPU step.
    public var projectionHidden: Int = 512
    public var projectionOutput: Int = 128
    /// Linear layers of the projector: 3 in the ViT recipe, 2 in the ResNet one.
    public var projectionLayers: Int = 3
    public var predictorHidden: Int = 512
    /// A BatchNorm (no affine) on the predictor's output: the ViT recipe's; the ResNet
    /// recipe leaves it out. The projector always ends with one.
    public var predictorOutputNorm: Bool = true
    /// m at the start of the cosine schedule to 1: 0.99 in the ViT recipe, 0.99 and, for
    /// the longer ResNet-50 schedules, 0.996 in the official code.
    public var momentum: Double = 0.99
    /// BYOL's augmentations, which MoCo v3 takes over (the paper's implementation
    /// details): blur and solarization per view.
    public var augmentation = ViewAugmentation.asymmetric
    public var mean: [Float] = [0.5]
    public var std: [Float] = [0.5]
    public init() {}

    public static let section = "moco-v3"
    public static let options: [SettingOption<Settings>] =
      [
        .temperature(\.temperature, "InfoNCE temperature (ViT recipe 0.2, ResNet 1.0)"),
        .width("projection_hidden", \.projectionHidden, "projector's hidden width"),
        .width("projection_output", \.projectionOutput, "projector's (and predictor's) output width"),
        .integer("projection_layers", \.projectionLayers, in: 2...8, "projector's linear layers (ViT recipe 3, ResNet 2)"),
        .width("predictor_hidden", \.predictorHidden, "predictor's hidden width"),
        .flag("predictor_output_norm", \.predictorOutputNorm, "BatchNorm on the predictor's output (ViT recipe)"),
        .targetMomentum(\.momentum, "momentum-encoder momentum at the start, rising to 1 along a cosine"),
      ] + ViewAugmentation.options(\.augmentation) + [.inputMean(\.mean), .inputStd(\.std)]
  }

  public let settings: Settings
  public let heads = Module()
  public var inputNormalization: InputNormalization { InputNormalization(mean: settings.mean, std: settings.std) }
  let projector: MLPHead
  let predictor: MLPHead
  let momentumEncoder: MomentumEncoder
  let views: TwoViewSampler

  /// Two views at the backbone's size (the momentum encoder's pass keeps no activations).
  public static func backboneInputs(_ settings: Settings, backbone: BackboneConfig) -> [Int] {
    TwoViewSampler.backboneInputs(backbone)
  }

  public init(_ settings: Settings, backbone: any Backbone, using rng: inout RandomGenerator) throws {
    try settings.validate()
    self.settings = settings
    views = try TwoViewSampler(settings.augmentation, mean: settings.mean, std: settings.std, backbone: backbone.config)
    // Every layer of both MLPs has BatchNorm, the hidden ones with ReLU; the projector's
    // output BN has no affine (implementation details, "MLP heads"). [B, F] → [B, D] → [B, D].
    let makeProjector = { (rng: inout RandomGenerator) in
      MLPHead(
        input: backbone.featureCount, hidden: settings.projectionHidden, output: settings.projectionOutput,
        hiddenLayers: settings.projectionLayers - 1, hiddenBias: false, outputNorm: true, using: &rng)
    }
    projector = makeProjector(&rng)
    predictor = MLPHead(
      input: settings.projectionOutput, hidden: settings.predictorHidden, output: settings.projectionOutput,
      hiddenBias: false, outputNorm: settings.predictorOutputNorm, using: &rng)
    let onlineProjector = projector.asModule()
    momentumEncoder = try MomentumEncoder(
      online: backbone, onlineProjector: onlineProjector, projector: makeProjector(&rng), using: &rng)
    heads.register(child: "projector", onlineProjector)
    heads.register(child: "predictor", predictor.asModule())
    heads.register(child: "target", momentumEncoder.module)
  }

  public func sample(_ image: Image, using rng: inout RandomGenerator) throws -> TaskSample {
    views.sample(image, using: &rng)
  }

  public func loss(_ batch: TaskBatch, backbone: any Backbone) throws -> TaskOutput {
    let n = batch.count
    // Both views in one pass: [2n, …], the n first views then the n second views.
    let both = try Tensor.concat(batch.views, axis: 0)
    let q = try predictor(projector(backbone.features(both)))  // [2n, D]
    // The keys of the global batch: every process's, in global sample order per view
    // ([R·n, D] each). They carry no gradient, so nothing flows back through the gather.
    let keys = try batch.globalViews(momentumEncoder(both))
    // This process's images are global samples rank·n ..< (rank + 1)·n: their positives.
    let offset = batch.globalRows.lowerBound, t = settings.temperature
    // Symmetrized (Algorithm 1): ctr(q1, k2) + ctr(q2, k1).
    let a = try infoNCELoss(queries: q.sliced(axis: 0, 0..<n), keys: keys[1], temperature: t, positivesFrom: offset)
    let b = try infoNCELoss(queries: q.sliced(axis: 0, n..<(2 * n)), keys: keys[0], temperature: t, positivesFrom: offset)
    return TaskOutput(loss: try a.loss + b.loss, metrics: [("moco_top1", (a.top1 + b.top1) / 2)])
  }

  /// The momentum encoder follows the online network after each optimizer step; m rises
  /// from `momentum` to 1 along a half cosine over the run (the official code's
  /// `--moco-m-cos`).
  public func afterStep(_ progress: TrainingProgress) throws {
    momentumEncoder.update(momentum: cosineMomentum(base: settings.momentum, fraction: progress.fraction))
  }
}
