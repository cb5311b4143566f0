import Backbones
import Foundation
import Optimization
import Vision

// How a backbone is fine-tuned on a labeled set: the recipe (optimizer, schedule,
// regularizers, augmentation) and the defaults chosen for a backbone family and a label
// budget, each with the reason it was chosen. Anything a user sets wins over the default;
// finetune.json records the recipe that ran and which values were defaults.

/// The recipe one fine-tuning run follows.
public struct FinetuneRecipe: Codable, Sendable, Equatable {
  public var optimizer: OptimizerKind
  public var epochs: Int
  public var batchSize: Int
  /// Peak learning rate for a batch of 256 (the linear scaling rule scales it).
  public var baseLearningRate: Double
  /// The peak actually used: base × batch / 256.
  public var learningRate: Double { CosineSchedule.scaledLearningRate(base: baseLearningRate, batchSize: batchSize) }
  public var warmupEpochs: Double
  public var weightDecay: Double
  /// ViT only: block i's rate is scaled by decay^(depth − i), the embeddings' by
  /// decay^(depth + 1) (BEiT §2.6; MAE's fine-tuning). 1: every layer at the full rate.
  public var layerDecay: Double
  /// Drop path (stochastic depth, Huang et al. 2016) at the last block, rising linearly
  /// from 0 at the first (DeiT, MAE).
  public var dropPath: Double
  public var labelSmoothing: Double
  /// RandAugment on the training crops (Cubuk et al. 2020; nil: off).
  public var randAugment: RandAugmentRecipe?
  public var mixupAlpha: Double
  public var cutmixAlpha: Double
  /// Momentum of the weights' moving average evaluated and saved at the end (0: none,
  /// the last weights are used).
  public var emaMomentum: Double
  /// Area range of the training crops (RandomResizedCrop), a fraction of the image.
  public var cropScale: [Double]
  public var horizontalFlip: Bool

  enum CodingKeys: String, CodingKey {
    case optimizer, epochs, batchSize = "batch_size", baseLearningRate = "base_lr"
    case warmupEpochs = "warmup_epochs", weightDecay = "weight_decay", layerDecay = "layer_decay"
    case dropPath = "drop_path", labelSmoothing = "label_smoothing", randAugment = "rand_augment", mixupAlpha = "mixup", cutmixAlpha = "cutmix"
    case emaMomentum = "ema", cropScale = "crop_scale", horizontalFlip = "horizontal_flip"
  }

  init(
    optimizer: OptimizerKind, epochs: Int, batchSize: Int, baseLearningRate: Double, warmupEpochs: Double,
    weightDecay: Double, layerDecay: Double, dropPath: Double, labelSmoothing: Double,
    randAugment: RandAugmentRecipe?, mixupAlpha: Double, cutmixAlpha: Double, emaMomentum: Double,
    cropScale: [Double], horizontalFlip: Bool
  ) {
    self.optimizer = optimizer
    self.epochs = epochs
    self.batchSize = batchSize
    self.baseLearningRate = baseLearningRate
    self.warmupEpochs = warmupEpochs
    self.weightDecay = weightDecay
    self.layerDecay = layerDecay
    self.dropPath = dropPath
    self.labelSmoothing = labelSmoothing
    self.randAugment = randAugment
    self.mixupAlpha = mixupAlpha
    self.cutmixAlpha = cutmixAlpha
    self.emaMomentum = emaMomentum
    self.cropScale = cropScale
    self.horizontalFlip = horizontalFlip
  }

  /// Throws `EvaluationError` naming the option when a value is out of its range.
  public func validate() throws {
    func check(_ ok: Bool, _ option: String, _ expected: String, _ value: Any) throws {
      guard ok else { throw EvaluationError(option, "must be \(expected), got \(value)") }
    }
    try check(optimizer != .lars, "--optimizer", "adamw or sgd (LARS is for large-batch pretraining)", optimizer.rawValue)
    try check(epochs >= 1, "--epochs", "at least 1", epochs)
    try check(batchSize >= 2, "--batch-size", "at least 2 (BatchNorm and Mixup need two images)", batchSize)
    try check(baseLearningRate > 0 && baseLearningRate.isFinite, "--lr", "a positive number", baseLearningRate)
    try check(warmupEpochs >= 0 && warmupEpochs < Double(epochs), "--warmup-epochs", "in [0, epochs)", warmupEpochs)
    try check(weightDecay >= 0, "--weight-decay", "at least 0", weightDecay)
    try check(layerDecay > 0 && layerDecay <= 1, "--layer-decay", "in (0, 1]", layerDecay)
    try check(dropPath >= 0 && dropPath < 1, "--drop-path", "in [0, 1)", dropPath)
    try check(labelSmoothing >= 0 && labelSmoothing < 1, "--label-smoothing", "in [0, 1)", labelSmoothing)
    if let a = randAugment {
      try check(a.operations >= 1, "--rand-augment-ops", "at least 1 (0: off)", a.operations)
      try check(
        (0..<RandAugment.magnitudeBins).contains(a.magnitude), "--rand-augment-magnitude",
        "in 0...\(RandAugment.magnitudeBins - 1)", a.magnitude)
    }
    try check(mixupAlpha >= 0, "--mixup", "at least 0 (0: off)", mixupAlpha)
    try check(cutmixAlpha >= 0, "--cutmix", "at least 0 (0: off)", cutmixAlpha)
    try check(emaMomentum >= 0 && emaMomentum < 1, "--ema", "in [0, 1) (0: off)", emaMomentum)
    try check(
      cropScale.count == 2 && cropScale[0] > 0 && cropScale[0] <= cropScale[1] && cropScale[1] <= 1, "--crop-scale",
      "two numbers 0 < min ≤ max ≤ 1", cropScale)
  }
}

/// RandAugment's two settings: ops per image and their shared magnitude (0…30,
/// torchvision's scale).
public struct RandAugmentRecipe: Codable, Sendable, Equatable {
  public var operations: Int
  public var magnitude: Int
  public init(operations: Int, magnitude: Int) {
    self.operations = operations
    self.magnitude = magnitude
  }
}

/// What a user set; nil fields take the recipe's default.
public struct FinetuneSettings: Sendable, Equatable {
  public var optimizer: OptimizerKind?
  public var epochs: Int?
  public var batchSize: Int?
  public var baseLearningRate: Double?
  public var warmupEpochs: Double?
  public var weightDecay: Double?
  public var layerDecay: Double?
  public var dropPath: Double?
  public var labelSmoothing: Double?
  /// RandAugment's ops per image (0: off) and magnitude.
  public var randAugmentOperations: Int?
  public var randAugmentMagnitude: Int?
  public var mixupAlpha: Double?
  public var cutmixAlpha: Double?
  public var emaMomentum: Double?
  public var cropScale: [Double]?
  public var horizontalFlip: Bool?
  public init() {}

  /// The recipe for `backbone` with `labeledImages` training images: the user's values,
  /// and for the rest the defaults below, with a sentence per default saying why.
  public func resolve(for backbone: BackboneConfig, labeledImages n: Int) -> (recipe: FinetuneRecipe, reasons: [String]) {
    var reasons: [String] = []
    func pick<T>(_ set: T?, _ value: T, _ why: String) -> T {
      if let set { return set }
      reasons.append(why)
      return value
    }
    let isViT: Bool
    if case .vit = backbone { isViT = true } else { isViT = false }
    // A batch of a quarter of the labeled set at most, so that even 100 labels give
    // four updates per epoch; 256 (DeiT's per-GPU scale) for larger sets.
    let batch = pick(
      batchSize, Swift.max(8, Swift.min(256, 1 << Int(Foundation.log2(Double(Swift.max(n / 4, 1)))))),
      "batch: at most 256 and at most a quarter of the \(n) labeled images, a power of two, so an epoch has ≥ 4 updates")
    // Small label sets need many passes; the steps, not the epochs, set the cost.
    // SimCLR fine-tunes 60 epochs on 1% of ImageNet, 30 on 10% (Chen et al. 2020, §B.5).
    let epochCount = pick(
      epochs, n <= 2_000 ? 60 : n <= 20_000 ? 30 : 15,
      "epochs: 60 up to 2,000 labels, 30 up to 20,000, then 15 (SimCLR's semi-supervised protocol: 60 epochs at 1%, 30 at 10%)")
    let optimizerKind = pick(
      optimizer, .adamw,
      "optimizer: AdamW, the fine-tuning optimizer of BEiT, MAE and DeiT; robust to the scale of a pretrained network's weights")
    let lr = pick(
      baseLearningRate, isViT ? 1e-3 : 2e-3,
      isViT
        ? "lr: 1e-3 per 256 images (MAE fine-tunes ViT-B at 5e-4; smaller ViTs take more)"
        : "lr: 2e-3 per 256 images (AdamW on a ResNet; a pretrained BatchNorm network tolerates a higher rate than a ViT)")
    let warmup = pick(
      warmupEpochs, Swift.min(5, Double(epochCount) / 10),
      "warmup: 5 epochs (MAE's fine-tuning), at most a tenth of the epochs")
    let wd = pick(weightDecay, 0.05, "weight decay: 0.05 on weights, none on biases and norms (MAE, DeiT)")
    let decay = pick(
      layerDecay, isViT ? 0.75 : 1,
      isViT
        ? "layer decay: 0.75 (BEiT; MAE uses 0.65 for 12-block ViT-B, shallower ViTs lose less by decaying less)"
        : "layer decay: off (1) for a ResNet (BEiT's rule is defined over transformer blocks)")
    let drop = pick(dropPath, isViT ? 0.1 : 0, isViT ? "drop path: 0.1 (MAE's ViT-B fine-tuning)" : "drop path: off for a ResNet")
    let smoothing = pick(labelSmoothing, 0.1, "label smoothing: 0.1 (Szegedy et al. 2016; DeiT, MAE)")
    // Measured (100 labels per class, the default recipe otherwise): rand-m9 cost 7.9
    // points fine-tuned on the 32-px coloured shapes (64.17% against 72.08%, 360 steps)
    // and 0.28 on Fashion-MNIST (83.74% against 84.02%, 420 steps); from scratch 11.3 and
    // 2.1. DeiT and MAE use it over 100–300 ImageNet epochs, which short runs lack.
    let operations = pick(
      randAugmentOperations, 0,
      "RandAugment: off (with 100 labels per class, 2 ops at magnitude 9 cost 7.9 points on 32-px shapes and 0.3 on Fashion-MNIST; DeiT and MAE use it over 100+ ImageNet epochs)")
    let magnitude = pick(randAugmentMagnitude, 9, "RandAugment magnitude, when on: 9 of 30 (DeiT, MAE)")
    let randAugment = operations > 0 ? RandAugmentRecipe(operations: operations, magnitude: magnitude) : nil
    let mixup = pick(
      mixupAlpha, 0.8, "mixup: α 0.8 (DeiT, MAE); with few labels the strongest regularizer of the recipe")
    let cutmix = pick(cutmixAlpha, 1.0, "cutmix: α 1.0, switched with Mixup per batch with probability 0.5 (DeiT, MAE)")
    let stepsPerEpoch = Swift.max(1, n / batch)
    let totalSteps = stepsPerEpoch * epochCount
    // An average over about the last tenth of training: momentum 1 − 10/steps.
    let ema = pick(
      emaMomentum, Swift.min(0.9999, Swift.max(0.9, 1 - 10 / Double(totalSteps))),
      "ema: momentum 1 − 10/steps (an average over roughly the last tenth of the \(totalSteps) steps; DeiT's EMA idea for short runs)"
    )
    let crop = pick(
      cropScale, [0.25, 1.0],
      "crop scale: 0.25–1 of the image (RandomResizedCrop; the standard 0.08 leaves too little of small or low-resolution images)")
    let flip = pick(horizontalFlip, true, "horizontal flip: on")
    let recipe = FinetuneRecipe(
      optimizer: optimizerKind, epochs: epochCount, batchSize: batch, baseLearningRate: lr, warmupEpochs: warmup,
      weightDecay: wd, layerDecay: decay, dropPath: drop, labelSmoothing: smoothing, randAugment: randAugment, mixupAlpha: mixup,
      cutmixAlpha: cutmix, emaMomentum: ema, cropScale: crop, horizontalFlip: flip)
    return (recipe, reasons)
  }
}
