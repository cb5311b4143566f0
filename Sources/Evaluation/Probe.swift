import Autograd
import Foundation
import Support

// `pretext probe`: how well a frozen backbone's features classify a labeled folder,
// beside the same architecture at random initialization and raw pixels. This file is the
// order of the stages (each in a file of its own: ProbeImages, DepthChoice, ProbeFeatures,
// ProbeFits) and what a probe leaves behind: probe.json and, when asked, a classifier file.

public enum Probe {
  /// Runs the probe: features of the train (labeled subset) and test folders at every
  /// requested depth, the depth chosen on a validation split, a linear classifier and kNN
  /// at that depth, the same for the baselines; writes probe.json into the run folder.
  ///
  /// - Parameter progress: status lines (for standard error).
  public static func run(_ options: ProbeOptions, progress: (String) -> Void = { _ in }) throws -> ProbeReport {
    let clock = Stopwatch()
    try options.validate()
    // The backbone, and how images become its inputs.
    let loaded = try LoadedBackbone(path: options.weights, architecture: options.architecture)
    let preprocessing = try Preprocessing(config: loaded.backbone.config, stored: loaded.normalization)
    // The labeled folders; pixels are decoded later, only if some features must be computed.
    let images = try ProbeImages(options, preprocessing: preprocessing, progress: progress)
    let depths = try DepthChoice(
      options, backbone: loaded.backbone, labels: images.labels, classes: images.classes.count)
    // Features of every model first, then the classifiers: independent fits run side by
    // side (see `ProbeFits`).
    let inputs = try ProbeFeatures(options, images: images).inputs(
      loaded, candidates: depths.candidates, progress: progress)
    let fits = ProbeFits(
      labels: images.labels, testLabels: images.testLabels, classes: images.classes.count, split: depths.split,
      classifier: options.classifier, knn: options.evaluatedKNN, seed: options.seed &+ 2)
    var (results, classifiers) = try fits.run(inputs, progress: progress)
    if options.baselines { addGains(&results) }
    let report = makeReport(
      options, loaded: loaded, images: images, depths: depths, results: results, seconds: clock.seconds)
    try write(report, to: options.reportPath)
    if let target = options.saveClassifier {
      // Model 0 is the backbone (the baselines follow it).
      try saveClassifier(
        classifiers[0], of: results[0], options, loaded: loaded, images: images, to: target, progress: progress)
    }
    return report
  }

  /// Gains in top-1 points over each baseline. `results`: backbone, random init, raw
  /// pixels.
  static func addGains(_ results: inout [ModelResult]) {
    let (randomInit, rawPixels) = (results[1], results[2])
    for i in results.indices {
      if results[i].model != .randomInit { results[i].gainOverRandomInit = results[i].gain(over: randomInit) }
      if results[i].model != .rawPixels { results[i].gainOverRawPixels = results[i].gain(over: rawPixels) }
    }
  }

  /// probe.json's contents; dated now, `seconds` the probe's wall-clock time so far.
  static func makeReport(
    _ options: ProbeOptions, loaded: LoadedBackbone, images: ProbeImages, depths: DepthChoice,
    results: [ModelResult], seconds: Double
  ) -> ProbeReport {
    let config = loaded.backbone.config
    let (train, test) = (images.train, images.test)
    return ProbeReport(
      version: options.version, commandLine: options.commandLine,
      date: ISO8601DateFormatter().string(from: Date()),
      weights: .init(
        path: options.weights, sha256: loaded.sha256, bytes: loaded.bytes, architecture: config.name, config: config),
      train: .init(path: train.root, images: train.count, classes: train.classes, fingerprint: images.trainFingerprint),
      test: .init(path: test.root, images: test.count, classes: test.classes, fingerprint: images.testFingerprint),
      labels: .init(
        budget: options.budgetText, used: images.selection.count, perClass: images.perClass, seed: options.seed),
      preprocessing: images.preprocessing,
      layerSelection: .init(
        mode: options.layers, validationFraction: options.validationFraction,
        trainingImages: depths.split?.train.count ?? 0, validationImages: depths.split?.validation.count ?? 0,
        concatenatedDepths: options.recordedConcatenatedDepths, note: depths.note),
      classifier: options.classifier, knn: options.evaluatedKNN, seed: options.seed, threads: Parallel.threads,
      results: results, seconds: .init(images: images.decodingSeconds, total: seconds))
  }

  /// Writes the backbone with `head` (trained on all the labels used, at `result`'s
  /// depth) as a classifier file for `pretext predict`.
  static func saveClassifier(
    _ head: LinearClassifier, of result: ModelResult, _ options: ProbeOptions, loaded: LoadedBackbone,
    images: ProbeImages, to target: String, progress: (String) -> Void
  ) throws {
    let info = ClassifierFile.Info(
      classes: images.classes, depth: result.layer,
      source: "linear probe (\(options.classifier.method.rawValue)) on \(images.train.list ?? images.train.root), "
        + "\(images.selection.count) labels; weights \(options.weights)",
      testTop1: result.linear.top1)
    try ClassifierFile.write(
      backbone: loaded.backbone, normalization: loaded.normalization, head: head, info: info, to: target)
    progress("wrote the classifier \(target) (\(images.classes.count) classes, features at \(result.layer))")
  }
}
