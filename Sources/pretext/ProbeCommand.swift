import ArgumentParser
import Autograd
import Backbones
import Diagnostics
import Evaluation
import Foundation

/// Options naming the architecture of a weights file without Pretext's metadata.
struct ArchitectureOptions: ParsableArguments {
  @Option(help: "The architecture (a preset), for weight files without Pretext's metadata.") var backbone: String?
  @Option(help: "With --backbone: input image size.") var imageSize: Int?
  @Option(help: "With --backbone: ViT patch size.") var patchSize: Int?
  @Option(help: "With --backbone: input channels (1 or 3).") var inChannels: Int?
  @Option(help: "With --backbone: the ViT's width or the ResNet's first-stage channels (the preset's when absent).")
  var width: Int?

  func config() throws -> BackboneConfig? {
    guard let backbone else {
      if imageSize != nil || patchSize != nil || inChannels != nil || width != nil {
        throw ValidationError("--image-size, --patch-size, --in-channels and --width need --backbone")
      }
      return nil
    }
    return try BackbonePreset.config(
      backbone, imageSize: imageSize, patchSize: patchSize, inChannels: inChannels, width: width)
  }
}

struct Probe: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Linear probe and kNN of a frozen backbone on a labeled folder, beside random-init and raw-pixel baselines.",
    discussion: """
      Features (every depth) of --train and --test are extracted once, without augmentation, and cached in \
      RUN/probe-cache/. The depth (single, or the deepest 2–4 concatenated) is chosen on a class-balanced 10% \
      validation split of the training labels, then \
      the classifier is retrained on all of them. Writes RUN/probe.json (RUN: the weights file's folder, or --out).
      """)

  @Option(help: "Backbone weights (safetensors).") var weights: String
  @OptionGroup var labeled: LabeledSetOptions
  @Option(help: "Depths to probe: all (choose on validation), last, or a name (e.g. blocks.3, layer4).")
  var layers = "all"
  @Option(help: "With --layers all, the deepest 2…N depths also compete concatenated (1: single depths only).")
  var concatDepths = 4
  @Option(help: "Linear classifier: sgd | lars (MAE) | lbfgs | ridge.") var classifier = "sgd"
  @Option(help: "sgd/lars: epochs (default: sgd 100, lars 90).") var epochs: Int?
  @Option(help: "sgd/lars: mini-batch size (default: sgd 256, lars 16384).") var batchSize: Int?
  @Option(name: .customLong("lr"), help: "sgd/lars: base learning rate for a batch of 256 (default 0.1).")
  var learningRate: Double?
  @Option(help: "sgd/lars: weight decay (default 0); lbfgs: L2 λ (default 1/N); ridge: α (default 1e-3).")
  var weightDecay: Double?
  @Option(help: "lbfgs: iteration limit.") var iterations = 500
  @Option(help: "kNN neighbours.") var k = 20
  @Option(help: "kNN temperature.") var temperature = 0.07
  @Flag(help: "Skip the kNN evaluation (linear probe only).") var noKnn = false
  @Option(help: "Share of the training labels held out to choose the depth.") var validationFraction = 0.1
  @Option(help: "Seed of the label subset, the validation split, the classifier and the random-init baseline.")
  var seed: UInt64 = 0
  @Flag(help: "Skip the random-init and raw-pixel baselines.") var noBaselines = false
  @Flag(help: "Do not read or write the feature cache.") var noCache = false
  @Option(help: "Folder for probe.json and the feature cache (default: the weights file's folder).") var out: String?
  @Option(help: "Images per forward pass during feature extraction.") var extractionBatchSize = 256
  @Flag(help: "Print probe.json instead of the table.") var json = false
  @Option(
    help: "Also write the backbone with its linear classifier (all the labels used, the chosen depth) as a classifier file for `pretext predict`."
  ) var saveClassifier: String?
  @OptionGroup var architecture: ArchitectureOptions
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    let budget = try labeled.budget()
    guard let method = LinearProbeSettings.Method(rawValue: classifier) else {
      throw ValidationError("--classifier must be one of sgd, lars, lbfgs, ridge; got \(classifier)")
    }
    var options = ProbeOptions(weights: weights, train: labeled.train, test: labeled.test)
    options.architecture = try architecture.config()
    options.budget = budget
    options.layers = LayerChoice(layers)
    guard concatDepths >= 1 else { throw ValidationError("--concat-depths must be at least 1 (1: single depths only); got \(concatDepths)") }
    options.concatenatedDepths = concatDepths
    options.classifier = LinearProbeSettings(
      method: method, epochs: epochs, batchSize: batchSize, baseLearningRate: learningRate, weightDecay: weightDecay,
      iterations: iterations)
    options.knn = KNNSettings(k: k, temperature: temperature)
    options.knnEnabled = !noKnn
    options.validationFraction = validationFraction
    options.seed = seed
    options.baselines = !noBaselines
    options.cache = !noCache
    options.outputDirectory = out
    options.extractionBatchSize = extractionBatchSize
    options.saveClassifier = saveClassifier
    options.version = PretextVersion.string
    options.commandLine = CommandLine.arguments
    let report = try Evaluation.Probe.run(options, progress: note)
    printWhole(json ? try jsonString(report) : report.table)
    if !json { note("wrote \((options.runDirectory as NSString).appendingPathComponent("probe.json"))") }
  }
}

struct Embed: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Write the features of every PNG or JPEG image under a folder (safetensors `features` [N, F]) and a CSV of their paths.",
    discussion: """
      The CSV (index,path; paths relative to DIR, in the order of the rows) goes next to the output: \
      OUT.safetensors → OUT.csv. Images are prepared as for the probe: channels, resize, centre crop, \
      the weights file's normalization.
      """)

  @Option(help: "Backbone weights (safetensors).") var weights: String
  @Argument(help: "Folder of PNG or JPEG images (searched recursively; labeled or not).") var directory: String
  @Option(help: "Output file (safetensors).") var out: String
  @Option(help: "Depth to read (default: the final features), e.g. blocks.3 or layer4.") var layer: String?
  @Option(help: "Images per forward pass.") var batchSize = 256
  @Flag(help: "Print a JSON summary.") var json = false
  @OptionGroup var architecture: ArchitectureOptions
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    var options = Embedding.Options(weights: weights, folder: directory, output: out)
    options.architecture = try architecture.config()
    options.layer = layer
    options.batchSize = batchSize
    let summary = try Embedding.run(options, progress: note)
    if json {
      printWhole(try jsonString(summary))
    } else {
      print(
        String(
          format: "wrote %@ (features [%ld, %ld] at %@) and %@ in %.1f s", summary.features, summary.images,
          summary.dimension,
          summary.layer, summary.csv, summary.seconds))
    }
  }
}

struct Predict: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Classify every image of a folder (or .txt list) with a classifier file; write a CSV of the top classes.",
    discussion: """
      The classifier file comes from `pretext probe ... --save-classifier FILE`: the backbone, the depth its \
      features are taken at, the linear head and the class names. Images are prepared as for the probe \
      (channels, resize, centre crop, the weights' normalization). The CSV has path,class,score (softmax \
      probability), then class_2,score_2 ... up to --top; rows in the folder's path order.
      """)

  @Option(help: "A classifier file (pretext probe --save-classifier).") var weights: String
  @Argument(help: "The folder (searched recursively) or .txt list of images to classify.") var folder: String
  @Option(help: "The CSV to write.") var out: String
  @Option(help: "Classes per image, best first.") var top = 1
  @Option(help: "Images per forward pass.") var batchSize = 256
  @Flag(help: "Print the summary as JSON.") var json = false
  @OptionGroup var threadOptions: ThreadOptions

  func run() throws {
    try threadOptions.apply()
    let summary = try Prediction.run(
      classifier: weights, folder: folder, output: out, top: top, batchSize: batchSize, progress: note)
    if json {
      printWhole(try jsonString(summary))
    } else {
      let counts = summary.counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { "\($0.key) \($0.value)" }
      print(
        "wrote \(summary.output): \(summary.images) images (" + counts.joined(separator: ", ")
          + String(format: ") in %.1f s", summary.seconds))
    }
  }
}
