import Autograd
import Backbones
import Foundation
import NN
import Support
import Vision

/// Which depth of the backbone the probe reads.
public enum LayerChoice: Sendable, Equatable, Codable, CustomStringConvertible {
  /// Every depth of `featuresByDepth`; the one with the best validation top-1 wins.
  case all
  /// The final features only.
  case last
  /// One depth by name (`blocks.3`, `norm`, `layer2`).
  case named(String)

  public init(_ text: String) {
    switch text {
    case "all": self = .all
    case "last": self = .last
    default: self = .named(text)
    }
  }

  public var description: String {
    switch self {
    case .all: return "all"
    case .last: return "last"
    case .named(let n): return n
    }
  }

  public init(from decoder: Decoder) throws { self.init(try decoder.singleValueContainer().decode(String.self)) }
  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(description)
  }
}

/// Everything `pretext probe` takes.
public struct ProbeOptions: Sendable {
  /// The backbone weights (safetensors).
  public var weights: String
  /// The architecture, for weight files without Pretext's metadata (nil: from the file).
  public var architecture: BackboneConfig?
  /// Labeled folders (one subfolder per class).
  public var train: String
  public var test: String
  public var budget: LabelSubset.Budget = .all
  public var layers: LayerChoice = .all
  /// With `layers: all`, the deepest 2…N depths also compete as one concatenated feature
  /// vector (DINO's linear protocol concatenates its last 4 blocks: Caron et al. 2021,
  /// https://arxiv.org/abs/2104.14294). 1: single depths only.
  public var concatenatedDepths = 4
  /// What probe.json records of `concatenatedDepths`: nil unless depths compete.
  var recordedConcatenatedDepths: Int? { layers == .all ? Swift.max(concatenatedDepths, 1) : nil }
  /// The share of the training labels held out to choose the depth.
  public var validationFraction = 0.1
  public var classifier = LinearProbeSettings()
  public var knn = KNNSettings()
  /// Also evaluate kNN on the same features (off: probe.json has no kNN accuracy).
  public var knnEnabled = true
  /// Seeds the label subset, the validation split, the classifier and the random-init
  /// baseline.
  public var seed: UInt64 = 0
  /// Also probe the random-init backbone and raw pixels.
  public var baselines = true
  /// Images per forward pass when extracting features.
  public var extractionBatchSize = 256
  /// Where probe.json and the feature cache go (nil: the weights file's folder).
  public var outputDirectory: String?
  /// The report's file name in `runDirectory` (several label budgets of one run each
  /// write their own, sharing the run's feature cache).
  public var reportFileName = "probe.json"
  /// Reuse and save extracted features.
  public var cache = true
  /// Where to write the backbone's classifier (trained on all the labels used, at the
  /// chosen depth) as a classifier file for `pretext predict` (nil: not written).
  public var saveClassifier: String?
  /// Recorded in probe.json: the program version and the command line.
  public var version = ""
  public var commandLine: [String] = []

  public init(weights: String, train: String, test: String) {
    self.weights = weights
    self.train = train
    self.test = test
  }

  public var runDirectory: String {
    outputDirectory ?? (URL(fileURLWithPath: weights).deletingLastPathComponent().path)
  }

  /// probe.json (or `reportFileName`) in the run folder.
  public var reportPath: String { (runDirectory as NSString).appendingPathComponent(reportFileName) }

  /// The label budget as probe.json records it: "all", "N per class" or "fraction F".
  public var budgetText: String {
    switch budget {
    case .all: return "all"
    case .perClass(let n): return "\(n) per class"
    case .fraction(let f): return "fraction \(f)"
    }
  }
}

// MARK: - Report

/// probe.json: what was measured and everything needed to measure it again.
public struct ProbeReport: Codable, Sendable {
  public struct Weights: Codable, Sendable {
    public var path: String
    public var sha256: String
    public var bytes: Int
    public var architecture: String
    public var config: BackboneConfig
  }
  public struct Folder: Codable, Sendable {
    public var path: String
    public var images: Int
    public var classes: [String]
    /// FNV-1a of the relative paths, sizes and modification times.
    public var fingerprint: String
  }
  public struct Labels: Codable, Sendable {
    /// "all", "N per class" or "fraction F".
    public var budget: String
    public var used: Int
    public var perClass: [Int]
    public var seed: UInt64
    enum CodingKeys: String, CodingKey { case budget, used, perClass = "per_class", seed }
  }
  public struct LayerSelection: Codable, Sendable {
    public var mode: LayerChoice
    public var validationFraction: Double
    /// Labels the candidates were trained on and scored on (0 when no choice was made).
    public var trainingImages: Int
    public var validationImages: Int
    /// The most depths concatenated into one candidate (nil in reports from before
    /// concatenations competed: single depths only).
    public var concatenatedDepths: Int?
    public var note: String?
    /// The candidates in words, for tables and reports.
    public var candidatesSummary: String {
      guard let n = concatenatedDepths, n > 1 else { return "each depth" }
      return "each depth and the deepest 2–\(n) concatenated"
    }
    enum CodingKeys: String, CodingKey {
      case mode, validationFraction = "validation_fraction", trainingImages = "training_images",
        validationImages = "validation_images", concatenatedDepths = "concatenated_depths", note
    }
  }
  public var version: String
  public var commandLine: [String]
  public var date: String
  public var weights: Weights
  public var train: Folder
  public var test: Folder
  public var labels: Labels
  public var preprocessing: Preprocessing
  public var layerSelection: LayerSelection
  public var classifier: LinearProbeSettings
  /// nil when kNN was not evaluated.
  public var knn: KNNSettings?
  public var seed: UInt64
  public var threads: Int
  /// The backbone first, then the baselines (random init, raw pixels).
  public var results: [ModelResult]
  public var seconds: Timings

  public struct Timings: Codable, Sendable {
    public var images: Double
    public var total: Double
  }

  enum CodingKeys: String, CodingKey {
    case version, commandLine = "command_line", date, weights, train, test, labels, preprocessing,
      layerSelection = "layer_selection", classifier, knn, seed, threads, results, seconds
  }

  public var backbone: ModelResult { results[0] }
  public func result(_ model: ModelResult.Model) -> ModelResult? { results.first { $0.model == model } }
}

/// One model's probe: the chosen depth and its linear and kNN accuracy on the test set.
public struct ModelResult: Codable, Sendable {
  public enum Model: String, Codable, Sendable {
    case backbone
    case randomInit = "random-init"
    case rawPixels = "raw-pixels"
    public var label: String {
      switch self {
      case .backbone: return "backbone"
      case .randomInit: return "random init"
      case .rawPixels: return "raw pixels"
      }
    }
  }
  public struct LayerScore: Codable, Sendable {
    public var layer: String
    public var validationTop1: Double
    enum CodingKeys: String, CodingKey { case layer, validationTop1 = "validation_top1" }
  }
  /// Top-1 difference in points: this model's minus the baseline's (kNN: nil when kNN
  /// was not evaluated).
  public struct Gain: Codable, Sendable {
    public var linear: Double
    public var knn: Double?
  }
  /// Seconds. `layerSelection` and `linear` are the durations of this model's fits,
  /// which run side by side with other fits (they overlap; `ProbeReport.seconds.total`
  /// is wall-clock time).
  public struct Timings: Codable, Sendable {
    public var features: Double
    public var featuresCached: Bool
    public var layerSelection: Double
    public var linear: Double
    public var knn: Double
    enum CodingKeys: String, CodingKey {
      case features, featuresCached = "features_cached", layerSelection = "layer_selection", linear, knn
    }
  }

  public var model: Model
  public var description: String
  public var layer: String
  public var featureDimension: Int
  public var layerScores: [LayerScore]
  public var linear: Accuracy
  /// nil when kNN was not evaluated.
  public var knn: Accuracy?
  public var linearSteps: Int
  public var linearFinalLoss: Double
  public var gainOverRandomInit: Gain?
  public var gainOverRawPixels: Gain?
  public var seconds: Timings

  enum CodingKeys: String, CodingKey {
    case model, description, layer, featureDimension = "feature_dimension", layerScores = "layer_scores", linear, knn,
      linearSteps = "linear_steps", linearFinalLoss = "linear_final_loss", gainOverRandomInit = "gain_over_random_init",
      gainOverRawPixels = "gain_over_raw_pixels", seconds
  }
}

// MARK: - Running

public enum Probe {
  /// Runs the probe: features of the train (labeled subset) and test folders at every
  /// requested depth, the depth chosen on a validation split, a linear classifier and kNN
  /// at that depth, the same for the baselines; writes probe.json into the run folder.
  ///
  /// - Parameter progress: status lines (for standard error).
  public static func run(_ options: ProbeOptions, progress: (String) -> Void = { _ in }) throws -> ProbeReport {
    let clock = Stopwatch()
    try options.classifier.validate()
    try options.knn.validate()
    guard options.validationFraction > 0 && options.validationFraction < 1 else {
      throw EvaluationError("--validation-fraction", "must be in (0, 1), got \(options.validationFraction)")
    }
    guard options.extractionBatchSize >= 1 else {
      throw EvaluationError("--batch-size", "must be at least 1, got \(options.extractionBatchSize)")
    }

    // The backbone and its weights.
    let loaded = try LoadedBackbone(path: options.weights, architecture: options.architecture)
    let config = loaded.backbone.config
    let preprocessing = try Preprocessing(config: config, stored: loaded.normalization)

    // The labeled folders; test classes must be training classes.
    let trainFolder = try LabeledImageFolder(path: options.train, options: preprocessing.folderOptions)
    let testFolder = try LabeledImageFolder(path: options.test, options: preprocessing.folderOptions)
    let classes = trainFolder.classes
    let testLabels = try mapTestLabels(train: trainFolder, test: testFolder)
    progress(
      "train: \(trainFolder.root) — \(trainFolder.count) images, \(classes.count) classes; test: \(testFolder.root) — \(testFolder.count) images"
    )
    let selection = try LabelSubset.select(
      labels: trainFolder.labels, classNames: classes, budget: options.budget, seed: options.seed)
    let labels = selection.map { trainFolder.labels[$0] }
    var perClass = [Int](repeating: 0, count: classes.count)
    for y in labels { perClass[y] += 1 }

    // Images are decoded once, only if some features must be computed (or for pixels).
    var imageSeconds = 0.0
    var trainImagesStore: Tensor?
    var testImagesStore: Tensor?
    func trainImages() throws -> Tensor {
      if let t = trainImagesStore { return t }
      let s = Stopwatch()
      progress("decoding \(selection.count) training images (\(preprocessing.summary))")
      let t = try ImageLoading.load(trainFolder, indices: selection, preprocessing: preprocessing)
      imageSeconds += s.seconds
      trainImagesStore = t
      return t
    }
    func testImages() throws -> Tensor {
      if let t = testImagesStore { return t }
      let s = Stopwatch()
      progress("decoding \(testFolder.count) test images")
      let t = try ImageLoading.load(testFolder, indices: Array(0..<testFolder.count), preprocessing: preprocessing)
      imageSeconds += s.seconds
      testImagesStore = t
      return t
    }

    let trainFingerprint = Fingerprint.folder(root: trainFolder.root, files: trainFolder.files)
    let testFingerprint = Fingerprint.folder(root: testFolder.root, files: testFolder.files)
    let cache = options.cache ? FeatureCache.forRun(options.runDirectory) : nil
    let selectionKey = options.budget == .all ? "all" : Fingerprint.indices(selection)

    /// Train and test features of one backbone, from the cache or computed (and cached).
    func backboneFeatures(_ backbone: any Backbone, modelKey: String, label: String) throws -> (
      train: [LayerFeatures], test: [LayerFeatures], seconds: Double, cached: Bool
    ) {
      let s = Stopwatch()
      var cachedAll = true
      func get(
        _ folder: LabeledImageFolder, _ fingerprint: String, _ selectionKey: String, _ indices: [Int]?,
        _ images: () throws -> Tensor, _ what: String
      ) throws -> [LayerFeatures] {
        let key = FeatureCacheKey(
          model: modelKey, folder: absolutePath(folder.root), folderFingerprint: fingerprint, selection: selectionKey,
          preprocessing: preprocessing.summary)
        let count = indices?.count ?? folder.count
        if let cache {
          if selectionKey != "all", let whole = cache.load(key.wholeFolder, count: folder.count), let indices {
            return whole.map { LayerFeatures(name: $0.name, values: rows($0.values, indices)) }
          }
          if let hit = cache.load(key, count: count) { return hit }
        }
        cachedAll = false
        let x = try images()
        let start = Stopwatch()
        let features = try FeatureExtractor.extract(backbone, images: x, batchSize: options.extractionBatchSize) {
          done in
          if done == x.shape[0] || done % (options.extractionBatchSize * 40) == 0 {
            progress(
              String(
                format: "  %@ %@: %ld/%ld images (%.0f images/s)", label, what, done, x.shape[0],
                Double(done) / max(start.seconds, 1e-9)))
          }
        }
        if let cache { try cache.store(key, features) }
        return features
      }
      progress("features: \(label)")
      let train = try get(trainFolder, trainFingerprint, selectionKey, selection, trainImages, "train")
      let test = try get(testFolder, testFingerprint, "all", nil, testImages, "test")
      return (train, test, s.seconds, cachedAll)
    }

    // Which depths compete.
    let depthNames = try backboneDepthNames(loaded.backbone)
    let candidates: [String]
    switch options.layers {
    case .all:
      // Single depths, then the deepest 2…N together ("layer3+layer4").
      let deepest = Swift.min(options.concatenatedDepths, depthNames.count)
      candidates = depthNames + (deepest >= 2 ? (2...deepest).map { depthNames.suffix($0).joined(separator: "+") } : [])
    case .last: candidates = [depthNames.last!]
    case .named(let name):
      guard depthNames.contains(name) else {
        throw EvaluationError(
          "--layers \(name)",
          "\(config.name) has no such depth; choose all, last or one of: \(depthNames.joined(separator: ", "))")
      }
      candidates = [name]
    }
    let split =
      candidates.count > 1
      ? LabelSubset.validationSplit(
        labels: labels, classes: classes.count, fraction: options.validationFraction, seed: options.seed &+ 1) : nil
    var selectionNote: String?
    if candidates.count > 1 && split == nil {
      selectionNote = "too few labels per class for a validation split; the last depth is used"
    }

    // Features of every model first, then the classifiers: independent fits run side by
    // side (see `ModelEvaluation`).
    var inputs: [ModelInput] = []
    // Without a split nothing competes: the deepest single depth (or the one asked for).
    let depthCandidates = split == nil ? [candidates.count > 1 ? depthNames.last! : candidates[0]] : candidates
    let main = try backboneFeatures(loaded.backbone, modelKey: "sha256:\(loaded.sha256)", label: "backbone")
    inputs.append(
      ModelInput(
        model: .backbone, description: options.weights, train: main.train, test: main.test, candidates: depthCandidates,
        featureSeconds: main.seconds, cached: main.cached))
    if options.baselines {
      // The same architecture at a seeded random initialization, through the same path.
      var rng = RandomGenerator(seed: options.seed)
      let random = try config.make(using: &rng)
      let configJSON = String(decoding: try JSONEncoder.sortedKeys.encode(config), as: UTF8.self)
      let r = try backboneFeatures(
        random, modelKey: "random-init:\(configJSON):seed \(options.seed)", label: "random init")
      inputs.append(
        ModelInput(
          model: .randomInit, description: "\(config.name) at random initialization (seed \(options.seed))",
          train: r.train,
          test: r.test, candidates: depthCandidates, featureSeconds: r.seconds, cached: r.cached))
      // Raw pixels: the preprocessed image, flattened.
      let s = Stopwatch()
      let px = (
        train: try FeatureExtractor.pixels(try trainImages()), test: try FeatureExtractor.pixels(try testImages())
      )
      inputs.append(
        ModelInput(
          model: .rawPixels,
          description: "preprocessed pixels (\(preprocessing.channels)×\(preprocessing.size)×\(preprocessing.size))",
          train: [px.train], test: [px.test], candidates: ["pixels"], featureSeconds: s.seconds, cached: false))
    }
    let evaluation = ModelEvaluation(
      labels: labels, testLabels: testLabels, classes: classes.count, split: split, classifier: options.classifier,
      knn: options.knnEnabled ? options.knn : nil, seed: options.seed &+ 2)
    var (results, classifiers) = try evaluation.run(inputs, progress: progress)
    if options.baselines {
      // Gains in top-1 points over each baseline.
      for i in results.indices {
        if results[i].model != .randomInit { results[i].gainOverRandomInit = gain(results[i], over: results[1]) }
        if results[i].model != .rawPixels { results[i].gainOverRawPixels = gain(results[i], over: results[2]) }
      }
    }

    let budgetText = options.budgetText
    let report = ProbeReport(
      version: options.version, commandLine: options.commandLine,
      date: ISO8601DateFormatter().string(from: Date()),
      weights: .init(
        path: options.weights, sha256: loaded.sha256, bytes: loaded.bytes, architecture: config.name, config: config),
      train: .init(path: trainFolder.root, images: trainFolder.count, classes: classes, fingerprint: trainFingerprint),
      test: .init(
        path: testFolder.root, images: testFolder.count, classes: testFolder.classes, fingerprint: testFingerprint),
      labels: .init(budget: budgetText, used: selection.count, perClass: perClass, seed: options.seed),
      preprocessing: preprocessing,
      layerSelection: .init(
        mode: options.layers, validationFraction: options.validationFraction, trainingImages: split?.train.count ?? 0,
        validationImages: split?.validation.count ?? 0,
        concatenatedDepths: options.recordedConcatenatedDepths, note: selectionNote),
      classifier: options.classifier, knn: options.knnEnabled ? options.knn : nil, seed: options.seed, threads: Parallel.threads, results: results,
      seconds: .init(images: imageSeconds, total: clock.seconds))
    try write(report, to: options.reportPath)
    if let target = options.saveClassifier {
      // Model 0 is the backbone (the baselines follow it).
      let info = ClassifierFile.Info(
        classes: classes, depth: results[0].layer,
        source: "linear probe (\(options.classifier.method.rawValue)) on \(trainFolder.list ?? trainFolder.root), "
          + "\(selection.count) labels; weights \(options.weights)",
        testTop1: results[0].linear.top1)
      try ClassifierFile.write(
        backbone: loaded.backbone, normalization: loaded.normalization, head: classifiers[0], info: info, to: target)
      progress("wrote the classifier \(target) (\(classes.count) classes, features at \(results[0].layer))")
    }
    return report
  }

  static func gain(_ a: ModelResult, over b: ModelResult) -> ModelResult.Gain {
    ModelResult.Gain(
      linear: a.linear.top1 - b.linear.top1, knn: a.knn.flatMap { x in b.knn.map { x.top1 - $0.top1 } })
  }

  /// Test labels as indices of the training classes (matched by name).
  static func mapTestLabels(train: LabeledImageFolder, test: LabeledImageFolder) throws -> [Int] {
    let index = Dictionary(uniqueKeysWithValues: train.classes.enumerated().map { ($1, $0) })
    let unknown = test.classes.filter { index[$0] == nil }
    guard unknown.isEmpty else {
      throw EvaluationError(
        test.root,
        "has class folder(s) \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")) that the training folder \(train.root) "
          + "lacks (its classes: \(train.classes.joined(separator: ", "))); a classifier can only predict classes it was trained on"
      )
    }
    return test.labels.map { index[test.classes[$0]]! }
  }

  /// The depth names of a backbone (one forward pass on a single blank image).
  static func backboneDepthNames(_ backbone: any Backbone) throws -> [String] {
    let c = backbone.config
    backbone.eval()
    let x = Tensor.zeros([1, c.inChannels, c.imageSize, c.imageSize])
    return try withoutGradients { try backbone.featuresByDepth(x).map(\.name) }
  }

  /// Writes JSON atomically (creates the folder).
  public static func write(_ report: ProbeReport, to path: String) throws {
    let folder = (path as NSString).deletingLastPathComponent
    do {
      if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
    } catch {
      throw EvaluationError(
        folder, "cannot create the output folder (\(error.localizedDescription)); choose another with --out")
    }
    try writeAtomically(Array(try JSONEncoder.sortedKeysPretty.encode(report)) + [10], to: path)
  }
}

/// The backbone a weights file holds, with its hash and stored normalization.
struct LoadedBackbone {
  let backbone: any Backbone
  let normalization: InputNormalization?
  let sha256: String
  let bytes: Int

  init(path: String, architecture: BackboneConfig?) throws {
    let file: SafeTensors
    do {
      file = try SafeTensors.read(path: path)
    } catch let error as SafeTensorsError {
      throw EvaluationError(
        path,
        "\(error.reason); expected a backbone weights file (backbone.safetensors of a run, or `pretext inspect MODEL --save-weights FILE`)"
      )
    }
    let config: BackboneConfig
    if let architecture {
      if let stored = try? BackboneWeights.config(of: file, source: path), stored != architecture {
        throw EvaluationError(
          path,
          "holds weights of \(stored.name) (\(stored.imageSize) px, \(stored.inChannels) channel(s)) but --backbone asks for "
            + "\(architecture.name) (\(architecture.imageSize) px, \(architecture.inChannels) channel(s)); drop --backbone to use the file's own architecture"
        )
      }
      config = architecture
    } else {
      config = try BackboneWeights.config(of: file, source: path)
    }
    var rng = RandomGenerator(seed: 0)
    let backbone = try config.make(using: &rng)
    try backbone.load(file, strict: true, source: path)
    self.backbone = backbone
    self.normalization = BackboneWeights.input(of: file)
    self.sha256 = try SHA256.hex(ofFile: path)
    self.bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
  }
}

/// One model's features, ready for the classifiers.
struct ModelInput {
  let model: ModelResult.Model
  let description: String
  let train: [LayerFeatures]
  let test: [LayerFeatures]
  /// The depths that compete (one: no choice to make).
  let candidates: [String]
  let featureSeconds: Double
  let cached: Bool

  /// The features of a candidate: one depth (`layer4`), or several joined by `+`
  /// (`layer3+layer4`), concatenated along the feature axis in that order.
  func features(_ candidate: String, test: Bool) throws -> LayerFeatures {
    guard let features = try LayerFeatures.candidate(candidate, from: test ? self.test : train) else {
      throw EvaluationError(model.rawValue, "no features for depth \(candidate)")
    }
    return features
  }
}

/// The path every model (backbone, random init, raw pixels) goes through:
/// 1. the depth: a classifier per candidate depth on the training part of the validation
///    split, scored on the held-out part (best top-1 wins; ties: the later candidate, i.e. the deeper or the concatenation);
/// 2. a classifier on all training labels at that depth, scored on the test set;
/// 3. kNN on the same features.
/// The fits of a phase are independent; sgd/lars fits are single-threaded and run side by
/// side on Pretext's threads, lbfgs/ridge fits use multi-threaded BLAS and run in turn.
struct ModelEvaluation {
  let labels: [Int]
  let testLabels: [Int]
  let classes: Int
  let split: (train: [Int], validation: [Int])?
  let classifier: LinearProbeSettings
  /// nil: no kNN.
  let knn: KNNSettings?
  let seed: UInt64

  struct Fit {
    let classifier: LinearClassifier
    let seconds: Double
  }

  /// Trains one classifier per job: the rows `rows` (nil: all) of `features`, with
  /// `labels` (one per row used). Rows are copied inside the job, so only the jobs
  /// running hold a copy.
  func fit(_ jobs: [(features: Tensor, rows: [Int]?, labels: [Int])]) throws -> [Fit] {
    let work = { (i: Int) throws -> Fit in
      let clock = Stopwatch()
      let x = jobs[i].rows.map { rows(jobs[i].features, $0) } ?? jobs[i].features
      let c = try LinearProbe.train(
        features: x, labels: jobs[i].labels, classes: classes, settings: classifier, seed: seed)
      return Fit(classifier: c, seconds: clock.seconds)
    }
    switch classifier.method {
    case .sgd, .lars:
      // Heaviest first, so the last job to start is a short one.
      let order = jobs.indices.sorted { jobs[$0].features.count > jobs[$1].features.count }
      let done = try runSideBySide(jobs.count) { try work(order[$0]) }
      var out = [Fit?](repeating: nil, count: jobs.count)
      for (k, i) in order.enumerated() { out[i] = done[k] }
      return out.map { $0! }
    case .lbfgs, .ridge:
      return try jobs.indices.map(work)
    }
  }

  /// Each model's result and its classifier on all the labels, in `inputs` order.
  func run(_ inputs: [ModelInput], progress: (String) -> Void) throws -> (
    results: [ModelResult], classifiers: [LinearClassifier]
  ) {
    // 1. The depth of each model.
    var chosen = inputs.map { $0.candidates.last! }
    var scores = inputs.map { _ in [ModelResult.LayerScore]() }
    var selectionSeconds = inputs.map { _ in 0.0 }
    if let split {
      var jobs: [(model: Int, layer: LayerFeatures)] = []
      for (m, input) in inputs.enumerated() where input.candidates.count > 1 {
        for name in input.candidates {
          jobs.append((m, try input.features(name, test: false)))
        }
      }
      if !jobs.isEmpty {
        progress(
          "choosing depths: \(jobs.count) classifiers on \(split.train.count) labels, scored on \(split.validation.count)"
        )
        let trainLabels = split.train.map { labels[$0] }
        let validationLabels = split.validation.map { labels[$0] }
        let fits = try fit(jobs.map { ($0.layer.values, split.train, trainLabels) })
        var best = inputs.map { _ in -1.0 }
        for (job, fit) in zip(jobs, fits) {
          let accuracy = Accuracy.of(
            scores: try fit.classifier.scores(rows(job.layer.values, split.validation)), labels: validationLabels)
          scores[job.model].append(.init(layer: job.layer.name, validationTop1: accuracy.top1))
          selectionSeconds[job.model] += fit.seconds
          if accuracy.top1 >= best[job.model] {
            best[job.model] = accuracy.top1
            chosen[job.model] = job.layer.name
          }
        }
        for (m, input) in inputs.enumerated() where !scores[m].isEmpty {
          progress(
            "  \(input.model.label): "
              + scores[m].map { String(format: "%@ %.2f%%", $0.layer, $0.validationTop1) }.joined(separator: ", ")
              + " → \(chosen[m])")
        }
      }
    }

    // 2. The classifier on all labels at the chosen depth.
    var layers: [(train: LayerFeatures, test: LayerFeatures)] = []
    for (m, input) in inputs.enumerated() {
      layers.append((try input.features(chosen[m], test: false), try input.features(chosen[m], test: true)))
    }
    progress("training \(inputs.count) linear classifier(s) on \(labels.count) labels")
    let fits = try fit(layers.map { ($0.train.values, nil, labels) })

    // 3. Test accuracy, and kNN on the same features.
    var results: [ModelResult] = []
    for (m, input) in inputs.enumerated() {
      let linear = Accuracy.of(scores: try fits[m].classifier.scores(layers[m].test.values), labels: testLabels)
      let knnClock = Stopwatch()
      let knnAccuracy = try knn.map {
        try KNN.evaluate(
          memory: layers[m].train.values, memoryLabels: labels, queries: layers[m].test.values,
          queryLabels: testLabels, classes: classes, settings: $0)
      }
      let knnSeconds = knnClock.seconds
      let knnText = knnAccuracy.map { String(format: ", kNN top-1 %.2f%% (%.1f s)", $0.top1, knnSeconds) } ?? ""
      progress(
        String(
          format: "  %@ at %@: linear top-1 %.2f%% (%.1f s)%@", input.model.label, chosen[m], linear.top1,
          fits[m].seconds, knnText))
      results.append(
        ModelResult(
          model: input.model, description: input.description, layer: chosen[m],
          featureDimension: layers[m].train.dimension, layerScores: scores[m], linear: linear, knn: knnAccuracy,
          linearSteps: fits[m].classifier.steps, linearFinalLoss: fits[m].classifier.finalLoss, gainOverRandomInit: nil,
          gainOverRawPixels: nil,
          seconds: .init(
            features: input.featureSeconds, featuresCached: input.cached, layerSelection: selectionSeconds[m],
            linear: fits[m].seconds, knn: knnSeconds)))
    }
    return (results, fits.map(\.classifier))
  }
}

/// Runs `count` independent jobs on Pretext's threads, each taking the next job when it
/// is free; results in job order. Jobs must not call multi-threaded kernels.
func runSideBySide<T>(_ count: Int, _ body: (Int) throws -> T) throws -> [T] {
  let results = UnsafeMutablePointer<T?>.allocate(capacity: count)
  results.initialize(repeating: nil, count: count)
  defer {
    results.deinitialize(count: count)
    results.deallocate()
  }
  let failure = FirstError()
  let next = JobCounter()
  Parallel.forChunks(min(count, Parallel.threads), minChunk: 1) { workers in
    for _ in workers {
      while failure.error == nil, let i = next.take(below: count) {
        do {
          results[i] = try body(i)
        } catch {
          failure.record(error)
        }
      }
    }
  }
  if let error = failure.error { throw error }
  return (0..<count).map { results[$0]! }
}

/// A shared job index.
final class JobCounter: @unchecked Sendable {
  private let lock = NSLock()
  private var value = 0
  func take(below limit: Int) -> Int? {
    lock.lock()
    defer { lock.unlock() }
    guard value < limit else { return nil }
    value += 1
    return value - 1
  }
}

/// Wall-clock seconds since creation.
struct Stopwatch {
  let start = DispatchTime.now().uptimeNanoseconds
  var seconds: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
