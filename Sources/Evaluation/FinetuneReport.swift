import Backbones
import Foundation

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
    case labeledImages = "labeled_images", classes, testImages = "test_images", recipe, learningRate = "lr", defaults
    case steps, stepsPerEpoch = "steps_per_epoch", finalLoss = "final_loss", trainingSeconds = "training_seconds"
    case imagesPerSecond = "images_per_second", top1 = "top1", top5 = "top5", lastWeights = "last_weights"
    case movingAverage = "moving_average", classifier, depth, seed, seconds, finished, version
    case commandLine = "command_line"
  }

  init(
    options: FinetuneOptions, start: Finetuning.Start, backbone: BackboneConfig, classes: [String], labeledImages: Int,
    testImages: Int, recipe: FinetuneRecipe, defaults: [String], trained: Finetuning.Loop.Result, last: Accuracy,
    ema: Accuracy?, accuracy: Accuracy, depth: String, seconds: Double
  ) {
    weights = options.weights
    weightsSHA256 = start.weightsSHA256
    initialization = start.fromScratch ? "random (seed \(options.seed))" : "pretrained"
    self.backbone = backbone
    train = options.train
    test = options.test
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
