import ArgumentParser
import Diagnostics
import Evaluation
import Foundation
import Optimization

struct Finetune: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Fine-tune a backbone and a linear head on a labeled folder (or train the same from random init), and test it.",
    discussion: """
      Trains every layer on the labeled images with warmup + cosine, label smoothing, RandAugment, Mixup/CutMix, \
      drop path, a moving average of the weights and, for a ViT, layer-wise learning-rate decay. Values left unset \
      take defaults chosen for the backbone and the number of labels; finetune.json lists them with the reason \
      for each. --from-scratch trains the same recipe from random init on the same labels: the supervised \
      baseline that shows what pretraining buys. Writes OUT/finetune.json and OUT/classifier.safetensors \
      (apply it with `pretext predict --weights OUT/classifier.safetensors DIR --out predictions.csv`).
      """)

  @Option(help: "Backbone weights (safetensors); with --from-scratch, only their architecture and normalization are used.")
  var weights: String?
  @OptionGroup var labeled: LabeledSetOptions
  @Option(help: "Folder for finetune.json and classifier.safetensors.") var out: String
  @Flag(help: "Train from random init (the supervised baseline) instead of the weights.") var fromScratch = false
  @Option(help: "adamw | sgd (default adamw).") var optimizer: String?
  @Option(help: "Epochs over the labeled images (default: 60 up to 2,000 labels, 30 up to 20,000, then 15).")
  var epochs: Int?
  @Option(help: "Mini-batch size (default: at most 256 and a quarter of the labeled images).") var batchSize: Int?
  @Option(name: .customLong("lr"), help: "Peak learning rate for a batch of 256 (default: ViT 1e-3, ResNet 2e-3).")
  var learningRate: Double?
  @Option(help: "Warmup epochs (default: 5, at most a tenth of the epochs).") var warmupEpochs: Double?
  @Option(help: "Weight decay on weights, not on biases and norms (default 0.05).") var weightDecay: Double?
  @Option(help: "ViT layer-wise learning-rate decay (default 0.75; 1: off).") var layerDecay: Double?
  @Option(help: "Drop path at the last residual block, rising from 0 at the first (default: ViT 0.1, ResNet 0).")
  var dropPath: Double?
  @Option(help: "RandAugment ops per training image, e.g. 2 (default 0: off).") var randAugmentOps: Int?
  @Option(help: "RandAugment magnitude, 0…30 (default 9).") var randAugmentMagnitude: Int?
  @Option(help: "Label smoothing (default 0.1).") var labelSmoothing: Double?
  @Option(help: "Mixup's Beta α (default 0.8; 0: off).") var mixup: Double?
  @Option(help: "CutMix's Beta α (default 1.0; 0: off).") var cutmix: Double?
  @Option(help: "Momentum of the weights' moving average kept at the end (default 1 − 10/steps; 0: off).")
  var ema: Double?
  @Option(help: "Training crops' area range, e.g. 0.25,1 (default 0.25,1).") var cropScale: String?
  @Flag(help: "No horizontal flips (for images whose mirror is another class, like text).") var noFlip = false
  @Option(help: "Seed of the label subset, the head, the random init and the augmentation.") var seed: UInt64 = 0
  @Option(help: "Images per forward pass when testing.") var evaluationBatchSize = 256
  @Flag(help: "Print finetune.json instead of the summary.") var json = false
  @OptionGroup var architecture: ArchitectureOptions
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    var options = FinetuneOptions(weights: weights, train: labeled.train, test: labeled.test, outputDirectory: out)
    options.architecture = try architecture.config()
    options.fromScratch = fromScratch
    options.budget = try labeled.budget()
    var s = FinetuneSettings()
    if let optimizer {
      guard let kind = OptimizerKind(rawValue: optimizer), kind != .lars else {
        throw ValidationError("--optimizer must be adamw or sgd; got \(optimizer)")
      }
      s.optimizer = kind
    }
    s.epochs = epochs
    s.batchSize = batchSize
    s.baseLearningRate = learningRate
    s.warmupEpochs = warmupEpochs
    s.weightDecay = weightDecay
    s.layerDecay = layerDecay
    s.dropPath = dropPath
    s.labelSmoothing = labelSmoothing
    s.randAugmentOperations = randAugmentOps
    s.randAugmentMagnitude = randAugmentMagnitude
    s.mixupAlpha = mixup
    s.cutmixAlpha = cutmix
    s.emaMomentum = ema
    if let cropScale {
      let parts = cropScale.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
      guard parts.count == 2, let lo = parts[0], let hi = parts[1] else {
        throw ValidationError("--crop-scale must be two numbers MIN,MAX (e.g. 0.25,1); got \(cropScale)")
      }
      s.cropScale = [lo, hi]
    }
    if noFlip { s.horizontalFlip = false }
    options.settings = s
    options.seed = seed
    options.evaluationBatchSize = evaluationBatchSize
    options.version = PretextVersion.string
    options.commandLine = CommandLine.arguments
    let report = try Finetuning.run(options, progress: note)
    printWhole(json ? try jsonString(report) : report.table)
    if !json { note("wrote \(options.reportPath)") }
  }
}
