import Autograd
import Backbones
import Foundation
import Support

// What each model a probe compares sees: the features of the backbone, of the same
// architecture at a seeded random initialization and of the raw pixels, for the labeled
// training subset and the whole test folder; read from the run's feature cache when an
// earlier probe extracted them (see `FeatureCache`), extracted and cached otherwise.

/// One model's features, ready for the classifiers.
struct ModelInput {
  let model: ModelResult.Model
  let description: String
  /// One entry per depth: [selection.count, F_d] and [test.count, F_d].
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

/// The features stage of a probe.
struct ProbeFeatures {
  let options: ProbeOptions
  let images: ProbeImages
  /// nil: `options.cache` is off.
  let cache: FeatureCache?

  init(_ options: ProbeOptions, images: ProbeImages) {
    self.options = options
    self.images = images
    cache = options.cache ? FeatureCache.forRun(options.runDirectory) : nil
  }

  /// The backbone's features, then (with `options.baselines`) those of random init and
  /// raw pixels: the order of probe.json's results.
  ///
  /// - Parameter candidates: the depths that compete for the backbone and random init.
  func inputs(_ loaded: LoadedBackbone, candidates: [String], progress: (String) -> Void) throws -> [ModelInput] {
    let config = loaded.backbone.config
    let main = try backboneFeatures(loaded.backbone, modelKey: loaded.cacheModel, label: "backbone", progress: progress)
    var inputs = [
      ModelInput(
        model: .backbone, description: options.weights, train: main.train, test: main.test, candidates: candidates,
        featureSeconds: main.seconds, cached: main.cached)
    ]
    guard options.baselines else { return inputs }
    // The same architecture at a seeded random initialization, through the same path.
    var rng = RandomGenerator(seed: options.seed)
    let random = try config.make(using: &rng)
    let configJSON = String(decoding: try JSONEncoder.sortedKeys.encode(config), as: UTF8.self)
    let r = try backboneFeatures(
      random, modelKey: "random-init:\(configJSON):seed \(options.seed)", label: "random init", progress: progress)
    inputs.append(
      ModelInput(
        model: .randomInit, description: "\(config.name) at random initialization (seed \(options.seed))",
        train: r.train, test: r.test, candidates: candidates, featureSeconds: r.seconds, cached: r.cached))
    // Raw pixels: the preprocessed image, flattened.
    let clock = Stopwatch()
    let pixels = (
      train: try FeatureExtractor.pixels(try images.trainImages(progress: progress)),
      test: try FeatureExtractor.pixels(try images.testImages(progress: progress))
    )
    let p = images.preprocessing
    inputs.append(
      ModelInput(
        model: .rawPixels, description: "preprocessed pixels (\(p.channels)×\(p.size)×\(p.size))",
        train: [pixels.train], test: [pixels.test], candidates: ["pixels"], featureSeconds: clock.seconds,
        cached: false))
    return inputs
  }

  /// Train and test features of one backbone at every depth, from the cache or computed
  /// (and cached); `cached` when neither had to be computed.
  private func backboneFeatures(_ backbone: any Backbone, modelKey: String, label: String, progress: (String) -> Void) throws
    -> (train: [LayerFeatures], test: [LayerFeatures], seconds: Double, cached: Bool)
  {
    let clock = Stopwatch()
    progress("features: \(label)")
    let train = try folderFeatures(backbone, modelKey: modelKey, label: label, test: false, progress: progress)
    let test = try folderFeatures(backbone, modelKey: modelKey, label: label, test: true, progress: progress)
    return (train.features, test.features, clock.seconds, train.cached && test.cached)
  }

  /// The features of the selected training images (`test`: of every test image).
  private func folderFeatures(
    _ backbone: any Backbone, modelKey: String, label: String, test: Bool, progress: (String) -> Void
  ) throws -> (features: [LayerFeatures], cached: Bool) {
    let folder = test ? images.test : images.train
    // The test folder is always used whole; the training folder's subset is named by
    // its selection, and read from the whole folder's features when they are cached.
    let subset = test ? nil : images.selection
    let key = FeatureCacheKey(
      model: modelKey, folder: absolutePath(folder.root),
      folderFingerprint: test ? images.testFingerprint : images.trainFingerprint,
      selection: test ? "all" : images.selectionKey, preprocessing: images.preprocessing.summary)
    let count = subset?.count ?? folder.count
    if let cache {
      if key.selection != "all", let whole = cache.load(key.wholeFolder, count: folder.count), let subset {
        return (whole.map { LayerFeatures(name: $0.name, values: rows($0.values, subset)) }, true)
      }
      if let hit = cache.load(key, count: count) { return (hit, true) }
    }
    let x = try test ? images.testImages(progress: progress) : images.trainImages(progress: progress)
    let what = test ? "test" : "train"
    let batchSize = options.extractionBatchSize
    let start = Stopwatch()
    let features = try FeatureExtractor.extract(backbone, images: x, batchSize: batchSize) { done in
      if done == x.shape[0] || done % (batchSize * 40) == 0 {
        progress(
          String(
            format: "  %@ %@: %ld/%ld images (%.0f images/s)", label, what, done, x.shape[0],
            Double(done) / max(start.seconds, 1e-9)))
      }
    }
    if let cache { try cache.store(key, features) }
    return (features, false)
  }
}
