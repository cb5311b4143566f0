import Autograd
import Backbones
import Foundation
import Support
import Vision

// What a later step can take from an earlier probe instead of recomputing it: its
// report, when the question asked is the same, and its cached features (for plots of a
// folder's features, e.g. the comparison report's projection of the test set).

extension Probe {
  /// The report already at `options.reportPath` when it answers the same question as
  /// `options`: the same weights (by SHA-256), the same labeled folders (path and
  /// fingerprint of names, sizes and modification times), label budget, seed, depth
  /// choice, classifier, kNN and baselines. Nil when there is no report, it cannot be
  /// read, or anything differs; the probe must then run.
  ///
  /// Scans both folders (to fingerprint them) and hashes the weights file, which is much
  /// cheaper than the probe.
  public static func reusableReport(_ options: ProbeOptions) -> ProbeReport? {
    guard let data = readWholeFile(options.reportPath),
      let report = try? JSONDecoder().decode(ProbeReport.self, from: data),
      !report.results.isEmpty,
      report.weights.sha256 == (try? SHA256.hex(ofFile: options.weights)),
      options.architecture == nil || options.architecture == report.weights.config,
      report.labels.budget == options.budgetText,
      report.seed == options.seed,
      report.layerSelection.mode == options.layers,
      report.layerSelection.concatenatedDepths == options.recordedConcatenatedDepths,
      report.layerSelection.validationFraction == options.validationFraction,
      report.classifier == options.classifier,
      report.knn == options.evaluatedKNN,
      (report.result(.randomInit) != nil) == options.baselines,
      (report.result(.rawPixels) != nil) == options.baselines,
      let train = try? LabeledImageFolder(path: options.train),
      let test = try? LabeledImageFolder(path: options.test),
      report.train.path == train.root, report.test.path == test.root,
      report.train.fingerprint == Fingerprint.folder(root: train.root, files: train.files),
      report.test.fingerprint == Fingerprint.folder(root: test.root, files: test.files)
    else { return nil }
    return report
  }

  /// Features of every image of a labeled folder at one depth of a backbone, prepared
  /// as the probe prepares them; read from the run's feature cache when a probe of the
  /// same weights already extracted that folder (the probe always caches the whole test
  /// folder), extracted and cached otherwise.
  ///
  /// - Parameters:
  ///   - layer: a depth name (`blocks.3`, `layer4`) or concatenation (`layer3+layer4`) as
  ///     in probe.json.
  ///   - runDirectory: the folder whose `probe-cache` to use (as `ProbeOptions.runDirectory`).
  public static func folderFeatures(
    weights: String, folder path: String, layer: String, runDirectory: String, batchSize: Int = 256,
    progress: (String) -> Void = { _ in }
  ) throws -> FolderFeatures {
    let loaded = try LoadedBackbone(path: weights, architecture: nil)
    let preprocessing = try Preprocessing(config: loaded.backbone.config, stored: loaded.normalization)
    let folder = try LabeledImageFolder(path: path)
    let cache = FeatureCache.forRun(runDirectory)
    let key = FeatureCacheKey(
      model: loaded.cacheModel, folder: absolutePath(folder.root),
      folderFingerprint: Fingerprint.folder(root: folder.root, files: folder.files), selection: "all",
      preprocessing: preprocessing.summary)
    var cached = true
    var depths = cache.load(key, count: folder.count)
    if depths == nil {
      cached = false
      progress("extracting features of \(folder.count) images of \(folder.root)")
      let images = try ImageLoading.load(folder, indices: Array(0..<folder.count), preprocessing: preprocessing)
      let extracted = try FeatureExtractor.extract(loaded.backbone, images: images, batchSize: batchSize)
      try cache.store(key, extracted)
      depths = extracted
    }
    guard let chosen = try LayerFeatures.candidate(layer, from: depths!) else {
      throw EvaluationError(
        layer,
        "\(loaded.backbone.config.name) has no such depth (it has: \(depths!.map(\.name).joined(separator: ", ")))")
    }
    return FolderFeatures(
      layer: layer, values: chosen.values, labels: folder.labels, classes: folder.classes, cached: cached)
  }
}

/// One folder's features at one depth, with its labels.
public struct FolderFeatures: @unchecked Sendable {
  public let layer: String
  /// [N, F]: row i is the i-th image of the folder (byte-wise path order).
  public let values: Tensor
  /// The class of each row, indexing `classes`.
  public let labels: [Int]
  public let classes: [String]
  /// Whether the features came from the cache.
  public let cached: Bool
}
