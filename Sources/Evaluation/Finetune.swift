import Autograd
import Backbones
import Foundation
import NN
import Optimization
import Support
import Vision

// `pretext finetune`: the whole backbone and a linear head trained on the labeled images
// (the protocol behind MAE's main results and SimCLR's semi-supervised ones), or the same
// recipe from random init (`fromScratch`), the supervised baseline on the same labels.
// Leaves finetune.json and a classifier file (`pretext predict` applies it) in the output
// folder.

/// Everything `pretext finetune` takes.
public struct FinetuneOptions: Sendable {
  /// The pretrained backbone (safetensors). From scratch it gives only the architecture
  /// and the input normalization, so both runs see the same inputs.
  public var weights: String?
  /// The architecture, for weight files without Pretext's metadata or, from scratch,
  /// instead of a weights file.
  public var architecture: BackboneConfig?
  /// Start from random init (seeded by `seed`) instead of the weights.
  public var fromScratch = false
  /// Labeled folders (one subfolder per class).
  public var train: String
  public var test: String
  public var budget: LabelSubset.Budget = .all
  public var settings = FinetuneSettings()
  /// Seeds the label subset (the probe's, for the same budget and seed), the head, the
  /// random init, the augmentation and the batch order.
  public var seed: UInt64 = 0
  /// Where finetune.json and classifier.safetensors go.
  public var outputDirectory: String
  /// Images per forward pass when evaluating.
  public var evaluationBatchSize = 256
  /// Recorded in finetune.json.
  public var version = ""
  public var commandLine: [String] = []

  public init(weights: String?, train: String, test: String, outputDirectory: String) {
    self.weights = weights
    self.train = train
    self.test = test
    self.outputDirectory = outputDirectory
  }

  public var reportPath: String { (outputDirectory as NSString).appendingPathComponent("finetune.json") }
  public var classifierPath: String { (outputDirectory as NSString).appendingPathComponent("classifier.safetensors") }
}

public enum Finetuning {
  /// Fine-tunes (or trains from scratch), evaluates on the test folder, and writes
  /// finetune.json and the classifier file.
  ///
  /// - Throws: `EvaluationError` naming the option, file or folder at fault (no weights
  ///   and no architecture, a test class the training folder lacks, a budget larger than
  ///   a class, a recipe value out of range, a loss that diverged); nothing is written
  ///   then.
  public static func run(_ options: FinetuneOptions, progress: (String) -> Void = { _ in }) throws -> FinetuneReport {
    let clock = Stopwatch()
    guard options.evaluationBatchSize >= 1 else {
      throw EvaluationError("--batch-size", "must be at least 1, got \(options.evaluationBatchSize)")
    }
    let start = try Start(options)
    let backbone = start.backbone
    let preprocessing = try Preprocessing(config: backbone.config, stored: start.normalization)
    let train = try LabeledImageFolder(path: options.train, options: preprocessing.folderOptions)
    let test = try LabeledImageFolder(path: options.test, options: preprocessing.folderOptions)
    let testLabels = try ProbeImages.mapTestLabels(train: train, test: test)
    let selection = try LabelSubset.select(
      labels: train.labels, classNames: train.classes, budget: options.budget, seed: options.seed)
    let labels = selection.map { train.labels[$0] }
    let (recipe, reasons) = options.settings.resolve(for: backbone.config, labeledImages: selection.count)
    try recipe.validate()
    guard selection.count >= recipe.batchSize else {
      throw EvaluationError(
        "--batch-size \(recipe.batchSize)",
        "is larger than the \(selection.count) labeled images; choose at most \(selection.count)")
    }
    progress(
      "train: \(train.root) — \(selection.count) of \(train.count) images labeled (\(options.budget.text)), "
        + "\(train.classes.count) classes; test: \(test.root) — \(test.count) images")
    progress("\(start.description); recipe: \(summary(recipe))")

    var loop = try Loop(backbone: backbone, classes: train.classes.count, recipe: recipe, seed: options.seed)
    let trained = try loop.train(
      images: train, selection: selection, labels: labels, preprocessing: preprocessing, progress: progress)

    progress("evaluating on \(test.count) test images")
    let last = try evaluate(
      trained.backbone, trained.head, on: test, labels: testLabels, preprocessing: preprocessing,
      batchSize: options.evaluationBatchSize)
    var ema: Accuracy?
    if let average = trained.average {
      ema = try evaluate(
        average.backbone, average.head, on: test, labels: testLabels, preprocessing: preprocessing,
        batchSize: options.evaluationBatchSize)
    }
    // The moving average is what the recipe asked to keep (chosen before seeing the test).
    let kept: (backbone: any Backbone, head: Linear) = trained.average ?? (trained.backbone, trained.head)
    let accuracy = ema ?? last
    let depth = try withoutGradients {
      try kept.backbone.featuresByDepth(try ImageLoading.load(test, indices: [0], preprocessing: preprocessing))
        .last!.name
    }
    let f = backbone.featureCount
    let head = LinearClassifier(
      mean: [Float](repeating: 0, count: f), invStd: [Float](repeating: 1, count: f), weight: kept.head.weight.copy(),
      bias: Array(UnsafeBufferPointer(start: kept.head.bias!.data, count: train.classes.count)), steps: trained.steps,
      finalLoss: trained.finalLoss)
    let report = FinetuneReport(
      options: options, start: start, backbone: backbone.config,
      folders: (Fingerprint.folder(root: train.root, files: train.files), Fingerprint.folder(root: test.root, files: test.files)),
      classes: train.classes, labeledImages: selection.count,
      testImages: test.count, recipe: recipe, defaults: reasons, trained: trained, last: last, ema: ema,
      accuracy: accuracy, depth: depth, seconds: clock.seconds)
    try writeReport(report, to: options.reportPath)
    try ClassifierFile.write(
      backbone: kept.backbone, normalization: start.normalization ?? .standard, head: head,
      info: ClassifierFile.Info(
        classes: train.classes, depth: depth,
        source: "\(start.fromScratch ? "trained from random init" : "fine-tuned") on \(train.root), "
          + "\(selection.count) labels, \(trained.steps) steps",
        testTop1: accuracy.top1),
      to: options.classifierPath)
    return report
  }

  /// The recipe in one line: "adamw lr 0.001 (batch 128), 60 epochs (5 warmup), …".
  public static func summary(_ r: FinetuneRecipe) -> String {
    var parts = [
      "\(r.optimizer.rawValue) lr \(String(format: "%.3g", r.learningRate)) (batch \(r.batchSize))",
      "\(r.epochs) epochs (\(String(format: "%g", r.warmupEpochs)) warmup), wd \(r.weightDecay)",
    ]
    if r.layerDecay < 1 { parts.append("layer decay \(r.layerDecay)") }
    if r.dropPath > 0 { parts.append("drop path \(r.dropPath)") }
    if let a = r.randAugment { parts.append("RandAugment \(a.operations) ops, magnitude \(a.magnitude)") }
    if r.labelSmoothing > 0 { parts.append("label smoothing \(r.labelSmoothing)") }
    if r.mixupAlpha > 0 { parts.append("mixup \(r.mixupAlpha)") }
    if r.cutmixAlpha > 0 { parts.append("cutmix \(r.cutmixAlpha)") }
    if r.emaMomentum > 0 { parts.append("ema \(String(format: "%.4g", r.emaMomentum))") }
    return parts.joined(separator: ", ")
  }

  /// Top-1/top-5 of `backbone` + `head` on every image of `folder` (evaluation mode, the
  /// probe's preprocessing), `batchSize` images decoded at a time.
  static func evaluate(
    _ backbone: any Backbone, _ head: Linear, on folder: LabeledImageFolder, labels: [Int], preprocessing: Preprocessing,
    batchSize: Int
  ) throws -> Accuracy {
    backbone.eval()
    let c = head.outFeatures
    let scores = Tensor.zeros([folder.count, c])
    var done = 0
    while done < folder.count {
      let indices = Array(done..<min(done + batchSize, folder.count))
      let x = try ImageLoading.load(folder, indices: indices, preprocessing: preprocessing)
      let s = try withoutGradients { try head(backbone.features(x)) }
      (scores.data + done * c).update(from: s.data, count: indices.count * c)
      done += indices.count
    }
    return Accuracy.of(scores: scores, labels: labels)
  }

  /// Where training starts: the pretrained backbone, or a random one of the same
  /// architecture.
  struct Start {
    let backbone: any Backbone
    let normalization: InputNormalization?
    let fromScratch: Bool
    let weightsSHA256: String?
    let description: String

    init(_ options: FinetuneOptions) throws {
      fromScratch = options.fromScratch
      if !options.fromScratch {
        guard let weights = options.weights else {
          throw EvaluationError("--weights", "is needed to fine-tune (or give --from-scratch with --backbone)")
        }
        let loaded = try LoadedBackbone(path: weights, architecture: options.architecture)
        backbone = loaded.backbone
        normalization = loaded.normalization
        weightsSHA256 = loaded.sha256
        description = "fine-tuning \(loaded.backbone.config.name) from \(weights)"
        return
      }
      var config = options.architecture
      var stored: InputNormalization?
      if let weights = options.weights {
        let file: SafeTensors
        do {
          file = try SafeTensors.read(path: weights)
        } catch let error as SafeTensorsError {
          throw EvaluationError(weights, "\(error.reason); expected a backbone weights file")
        }
        stored = BackboneWeights.input(of: file)
        if config == nil {
          do {
            config = try BackboneWeights.config(of: file, source: weights)
          } catch let error as SafeTensorsError {
            throw EvaluationError(weights, "\(error.reason); give the architecture with --backbone")
          }
        }
      }
      guard let config else {
        throw EvaluationError(
          "--from-scratch", "needs the architecture: --backbone PRESET, or --weights FILE whose architecture is used")
      }
      var rng = RandomGenerator(seed: options.seed)
      backbone = try config.make(using: &rng)
      normalization = stored
      weightsSHA256 = nil
      description = "training \(config.name) from random init (seed \(options.seed))"
    }
  }

  /// The training loop: augmentation, Mixup/CutMix, forward, loss, step, moving average.
  struct Loop {
    let backbone: any Backbone
    let head: Linear
    let model = Module()
    let recipe: FinetuneRecipe
    var rng: RandomGenerator
    /// The moving average's copy of the model, when the recipe keeps one.
    let average: (backbone: any Backbone, head: Linear, model: Module)?

    init(backbone: any Backbone, classes: Int, recipe: FinetuneRecipe, seed: UInt64) throws {
      self.backbone = backbone
      self.recipe = recipe
      rng = RandomGenerator(seed: seed ^ 0xF17E_7E57)
      // A small head init (MAE's fine-tuning starts its head near zero) so the first
      // steps do not push large random gradients into the pretrained features.
      head = Linear(backbone.featureCount, classes, initialization: .truncatedNormal(std: 0.01), using: &rng)
      model.register(child: "backbone", backbone)
      model.register(child: "head", head)
      if recipe.emaMomentum > 0 {
        var copyRNG = RandomGenerator(seed: 0)
        let b = try backbone.config.make(using: &copyRNG)
        let h = Linear(backbone.featureCount, classes, using: &copyRNG)
        let m = Module()
        m.register(child: "backbone", b)
        m.register(child: "head", h)
        average = (b, h, m)
      } else {
        average = nil
      }
      if recipe.dropPath > 0 { backbone.setDropPath(maximum: Float(recipe.dropPath), seed: seed ^ 0xD20B) }
    }

    struct Result {
      let backbone: any Backbone
      let head: Linear
      let average: (backbone: any Backbone, head: Linear)?
      let steps: Int
      let stepsPerEpoch: Int
      let finalLoss: Double
      let trainingSeconds: Double
    }

    /// Trains on images `selection` of `images` (their classes `labels`).
    mutating func train(
      images: LabeledImageFolder, selection: [Int], labels: [Int], preprocessing: Preprocessing,
      progress: (String) -> Void
    ) throws -> Result {
      let clock = Stopwatch()
      let n = selection.count
      let stepsPerEpoch = n / recipe.batchSize
      let totalSteps = stepsPerEpoch * recipe.epochs
      let parameters = layerDecayed(model.optimizedParameters())
      let optimizer = recipe.optimizer.make(
        parameters, momentum: 0.9, betas: [0.9, 0.999], weightDecay: Float(recipe.weightDecay))
      let schedule = CosineSchedule(
        peak: recipe.learningRate, minimum: recipe.learningRate * 1e-3,
        warmupSteps: recipe.warmupEpochs * Double(stepsPerEpoch), totalSteps: totalSteps)
      let ema = try average.map { try MovingAverage(of: model, into: $0.model) }
      // timm's training order: crop, flip, RandAugment, then normalization.
      var transforms: [any ImageTransform] = try [
        ConvertChannels(to: preprocessing.channels),
        RandomResizedCrop(size: preprocessing.size, scale: recipe.cropScale[0]...recipe.cropScale[1]),
        RandomHorizontalFlip(p: recipe.horizontalFlip ? 0.5 : 0),
      ]
      if let a = recipe.randAugment {
        transforms.append(try RandAugment(operations: a.operations, magnitude: a.magnitude))
      }
      transforms.append(try Normalize(mean: preprocessing.mean, std: preprocessing.std))
      let augment = Compose(transforms)
      let mixer = BatchMixer(mixupAlpha: recipe.mixupAlpha, cutmixAlpha: recipe.cutmixAlpha)
      let smoothing = Float(recipe.labelSmoothing)
      let every = max(1, totalSteps / 20)
      var step = 0
      var recent: [Double] = []
      model.train()
      for epoch in 0..<recipe.epochs {
        let order = rng.permutation(n)
        for b in 0..<stepsPerEpoch {
          let rows = order[(b * recipe.batchSize)..<((b + 1) * recipe.batchSize)].map { $0 }
          let x = try batch(images, rows.map { selection[$0] }, augment, preprocessing)
          let y = rows.map { labels[$0] }
          let mix = mixer.mix(x, using: &rng)
          let logits = try head(backbone.features(x))
          var loss = try crossEntropy(logits, targets: y, labelSmoothing: smoothing)
          if mix.kind != .none {
            let partners = (0..<y.count).map { y[BatchMix.partner(of: $0, batch: y.count)] }
            loss = try loss * mix.lambda + crossEntropy(logits, targets: partners, labelSmoothing: smoothing) * (1 - mix.lambda)
          }
          let value = Double(loss.data[0])
          guard value.isFinite else {
            throw EvaluationError(
              "fine-tuning", "the loss became \(value) at step \(step + 1) of \(totalSteps); lower the learning rate (--lr)")
          }
          model.zeroGrad()
          try loss.backward()
          let rate = schedule.rate(at: step)
          optimizer.step(lr: Float(rate))
          ema?.update(momentum: Float(recipe.emaMomentum))
          step += 1
          recent.append(value)
          if recent.count > stepsPerEpoch { recent.removeFirst() }
          if step % every == 0 || step == totalSteps {
            progress(
              String(
                format: "step %d/%d | epoch %.1f | loss %.4f | lr %.2e | %.0f img/s", step, totalSteps,
                Double(epoch) + Double(b + 1) / Double(stepsPerEpoch), recent.reduce(0, +) / Double(recent.count),
                rate, Double(step * recipe.batchSize) / max(clock.seconds, 1e-9)))
          }
        }
      }
      return Result(
        backbone: backbone, head: head, average: average.map { ($0.backbone, $0.head) }, steps: step,
        stepsPerEpoch: stepsPerEpoch, finalLoss: recent.reduce(0, +) / Double(max(recent.count, 1)),
        trainingSeconds: clock.seconds)
    }

    /// One augmented batch [B, C, S, S] of the images at `indices`, decoded in parallel,
    /// each image's crop and flip drawn from its own generator (split from the loop's, so
    /// a run is the same at any thread count).
    mutating func batch(
      _ images: LabeledImageFolder, _ indices: [Int], _ augment: Compose, _ preprocessing: Preprocessing
    ) throws -> Tensor {
      let seeds = indices.map { _ in rng.next() }
      return try ImageLoading.load(images, indices: indices, preprocessing: preprocessing, transform: augment, seeds: seeds)
    }

    /// The parameters with BEiT's layer-wise learning-rate decay for a ViT (Bao et al.
    /// 2021, §2.6; MAE's fine-tuning): layer 0 holds the patch embedding, class token and
    /// position embedding, layer i + 1 block i, layer depth + 1 the final norm and the head;
    /// layer l's rate is scaled by decay^(depth + 1 − l). Unchanged for a ResNet.
    func layerDecayed(_ parameters: [OptimizedParameter]) -> [OptimizedParameter] {
      guard let vit = backbone as? VisionTransformer, recipe.layerDecay < 1 else { return parameters }
      let depth = vit.blocks.count
      return parameters.map { p in
        var p = p
        let name = p.name.hasPrefix("backbone.") ? String(p.name.dropFirst("backbone.".count)) : ""
        let layer: Int
        if name.hasPrefix("patch_embed.") || name == "cls_token" || name == "pos_embed" {
          layer = 0
        } else if name.hasPrefix("blocks."), let i = Int(name.split(separator: ".")[1]) {
          layer = i + 1
        } else {
          layer = depth + 1
        }
        p.learningRateScale = Float(Foundation.pow(recipe.layerDecay, Double(depth + 1 - layer)))
        return p
      }
    }
  }
}
