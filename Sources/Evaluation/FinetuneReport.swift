import Backbones
import Foundation
import Support
import Vision

/// finetune.json: what was trained from what, on which labels, with which recipe, and
/// how well it classifies the test folder.
public struct FinetuneReport: Codable, Sendable {
  /// The weights file (nil only from scratch without one).
  public var weights: String?
  public var weightsSHA256: String?
  /// "pretrained" or "random (seed N)".
  public var initialization: String
  public var backbone: BackboneConfig
  public var train: String
  public var test: String
  /// Fingerprints of the two folders (names, sizes, modification times), so a later run
  /// can tell whether the report still answers for them; nil in older reports.
  public var trainFingerprint: String?
  public var testFingerprint: String?
  /// The input normalization the images went through (the weights file's, else the
  /// standard one); nil in older reports.
  public var normalization: InputNormalization?
  /// "all", "N per class" or "fraction F", and the images it selected.
  public var labels: String
  public var labeledImages: Int
  public var classes: [String]
  public var testImages: Int
  public var recipe: FinetuneRecipe
  /// The peak learning rate used (base × batch / 256).
  public var learningRate: Double
  /// The reasons for each setting the user left at its default.
  public var defaults: [String]
  public var steps: Int
  public var stepsPerEpoch: Int
  public var finalLoss: Double
  public var trainingSeconds: Double
  /// Training images (augmented views) per second.
  public var imagesPerSecond: Double
  /// The test accuracy of the classifier saved (the moving average when the recipe keeps
  /// one, otherwise the last weights).
  public var top1: Double
  public var top5: Double
  /// Both, when a moving average was kept.
  public var lastWeights: Accuracy
  public var movingAverage: Accuracy?
  /// The classifier file, and the depth its features come from.
  public var classifier: String
  public var depth: String
  public var seed: UInt64
  public var seconds: Double
  public var finished: String
  public var version: String
  public var commandLine: [String]

  enum CodingKeys: String, CodingKey {
    case weights, weightsSHA256 = "weights_sha256", initialization, backbone, train, test, labels
    case trainFingerprint = "train_fingerprint", testFingerprint = "test_fingerprint", normalization
    case labeledImages = "labeled_images", classes, testImages = "test_images", recipe, learningRate = "lr", defaults
    case steps, stepsPerEpoch = "steps_per_epoch", finalLoss = "final_loss", trainingSeconds = "training_seconds"
    case imagesPerSecond = "images_per_second", top1 = "top1", top5 = "top5", lastWeights = "last_weights"
    case movingAverage = "moving_average", classifier, depth, seed, seconds, finished, version
    case commandLine = "command_line"
  }

  init(
    options: FinetuneOptions, start: Finetuning.Start, backbone: BackboneConfig, folders: (train: String, test: String),
    classes: [String], labeledImages: Int, testImages: Int, recipe: FinetuneRecipe, defaults: [String], trained: Finetuning.Loop.Result, last: Accuracy,
    ema: Accuracy?, accuracy: Accuracy, depth: String, seconds: Double
  ) {
    weights = options.weights
    weightsSHA256 = start.weightsSHA256
    initialization = Self.initialization(fromScratch: start.fromScratch, seed: options.seed)
    self.backbone = backbone
    train = options.train
    test = options.test
    trainFingerprint = folders.train
    testFingerprint = folders.test
    normalization = start.normalization ?? .standard
    labels = options.budget.text
    self.labeledImages = labeledImages
    self.classes = classes
    self.testImages = testImages
    self.recipe = recipe
    learningRate = recipe.learningRate
    self.defaults = defaults
    steps = trained.steps
    stepsPerEpoch = trained.stepsPerEpoch
    finalLoss = trained.finalLoss
    trainingSeconds = trained.trainingSeconds
    imagesPerSecond = Double(trained.steps * recipe.batchSize) / max(trained.trainingSeconds, 1e-9)
    top1 = accuracy.top1
    top5 = accuracy.top5
    lastWeights = last
    movingAverage = ema
    classifier = options.classifierPath
    self.depth = depth
    seed = options.seed
    self.seconds = seconds
    finished = ISO8601DateFormatter().string(from: Date())
    version = options.version
    commandLine = options.commandLine
  }

  static func initialization(fromScratch: Bool, seed: UInt64) -> String {
    fromScratch ? "random (seed \(seed))" : "pretrained"
  }

  /// The report for people: the accuracy with its steps, what started it and the recipe.
  public var table: String {
    let k = min(5, classes.count)
    var lines = [
      "\(initialization == "pretrained" ? "fine-tuned" : "trained from \(initialization)") \(backbone.name) on "
        + "\(labeledImages) labels (\(labels)), \(steps) steps (\(recipe.epochs) epochs of \(stepsPerEpoch))"
        + String(format: " in %.0f s", trainingSeconds),
      String(format: "test top-1 %.2f%%  top-%d %.2f%%  (%d images)", top1, k, top5, testImages),
    ]
    if let movingAverage {
      lines.append(
        String(
          format: "  moving average %.2f%% (kept), last weights %.2f%%", movingAverage.top1, lastWeights.top1))
    }
    lines.append("recipe: \(Finetuning.summary(recipe))")
    lines.append("classifier: \(classifier) (features at \(depth))")
    return lines.joined(separator: "\n")
  }
}

extension Finetuning {
  /// The report already at `options.reportPath` when it answers the same question as
  /// `options`, with its classifier file beside it: the same start (the weights by
  /// SHA-256; from scratch, the same architecture, input normalization and seed, so one
  /// baseline serves every run of that architecture), the same labeled folders (path and
  /// fingerprint), label budget and seed, and the same recipe once the defaults are
  /// resolved. Nil when anything differs or cannot be read; fine-tuning must then run.
  public static func reusableReport(_ options: FinetuneOptions) -> FinetuneReport? {
    guard let data = readWholeFile(options.reportPath),
      let report = try? JSONDecoder().decode(FinetuneReport.self, from: data),
      FileManager.default.fileExists(atPath: options.classifierPath),
      report.initialization == FinetuneReport.initialization(fromScratch: options.fromScratch, seed: options.seed),
      report.labels == options.budget.text, report.seed == options.seed,
      report.train == options.train, report.test == options.test,
      let start = try? Start(options),
      report.weightsSHA256 == start.weightsSHA256, report.backbone == start.backbone.config,
      report.normalization == (start.normalization ?? .standard),
      report.recipe == options.settings.resolve(for: report.backbone, labeledImages: report.labeledImages).recipe,
      let train = try? LabeledImageFolder(path: options.train),
      let test = try? LabeledImageFolder(path: options.test),
      report.trainFingerprint == Fingerprint.folder(root: train.root, files: train.files),
      report.testFingerprint == Fingerprint.folder(root: test.root, files: test.files)
    else { return nil }
    return report
  }
}
