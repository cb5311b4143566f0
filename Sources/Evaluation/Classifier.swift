import Autograd
import Backbones
import Foundation
import NN
import Support
import Vision

// A classifier a user can apply: a backbone, the depth its features are taken at, a
// linear head on them and the class names, in one safetensors file. `pretext probe
// --save-classifier` writes it (the probe's classifier, trained on all its labels at the
// depth it chose); `pretext predict` applies it to a folder.
//
// The file is a backbone weights file (the same tensor names and `pretext.backbone` /
// `pretext.input` metadata, so `pretext probe` and PyTorch read the backbone as they
// read any other) plus:
//   classifier.weight  [C, F]   the linear layer
//   classifier.bias    [C]
//   classifier.mean    [F]      the probe's BatchNorm (evaluation mode), folded:
//   classifier.inv_std [F]      scores = ((x − mean) · inv_std) · weightᵀ + bias
//   metadata pretext.classifier = {"classes": [...], "depth": "layer3+layer4", "source": …}

public struct ClassifierFile {
  /// What the head predicts and where its features come from.
  public struct Info: Codable, Sendable, Equatable {
    /// Class names, indexed like the head's rows.
    public var classes: [String]
    /// The backbone depth (`layer4`), or depths joined by `+`, whose features it reads.
    public var depth: String
    /// How it was trained, for people (`linear probe on data/train, 200 labels`).
    public var source: String
    /// Its top-1 on the test folder it was evaluated on, when known.
    public var testTop1: Double?

    enum CodingKeys: String, CodingKey { case classes, depth, source, testTop1 = "test_top1" }

    public init(classes: [String], depth: String, source: String, testTop1: Double?) {
      self.classes = classes
      self.depth = depth
      self.source = source
      self.testTop1 = testTop1
    }
  }

  static let metadataKey = "pretext.classifier"
  static let prefix = "classifier."

  public let backbone: any Backbone
  public let normalization: InputNormalization?
  public let head: LinearClassifier
  public let info: Info

  /// Writes `backbone`, `head` and `info` to `path` atomically.
  public static func write(
    backbone: any Backbone, normalization: InputNormalization?, head: LinearClassifier, info: Info, to path: String
  ) throws {
    var metadata = try BackboneWeights.metadata(config: backbone.config, input: normalization)
    metadata[metadataKey] = String(decoding: try JSONEncoder.sortedKeys.encode(info), as: UTF8.self)
    let f = head.weight.shape[1]
    let tensors =
      backbone.stateDict() + [
        (prefix + "weight", head.weight),
        (prefix + "bias", try Tensor(shape: [head.bias.count], head.bias)),
        (prefix + "mean", try Tensor(shape: [f], head.mean)),
        (prefix + "inv_std", try Tensor(shape: [f], head.invStd)),
      ]
    try SafeTensors(tensors: tensors, metadata: metadata).write(to: path)
  }

  /// Reads a classifier file.
  ///
  /// - Throws: `EvaluationError` naming the file: unreadable, not a classifier (a plain
  ///   backbone file, say), or parts that do not fit together.
  public init(path: String) throws {
    let file: SafeTensors
    do {
      file = try SafeTensors.read(path: path)
    } catch let error as SafeTensorsError {
      throw EvaluationError(path, "\(error.reason); expected a classifier file (`pretext probe --save-classifier FILE`)")
    }
    guard let text = file.metadata[Self.metadataKey] else {
      throw EvaluationError(
        path,
        "has no \(Self.metadataKey) metadata: a backbone file, not a classifier; make one with "
          + "`pretext probe --weights \(path) --train DIR --test DIR --save-classifier FILE`")
    }
    let info: Info
    do {
      info = try JSONDecoder().decode(Info.self, from: Data(text.utf8))
    } catch {
      throw EvaluationError(path, "its \(Self.metadataKey) metadata is not a valid classifier description (\(error))")
    }
    let config: BackboneConfig
    do {
      config = try BackboneWeights.config(of: file, source: path)
    } catch let error as SafeTensorsError {
      throw EvaluationError(path, error.reason)
    }
    var rng = RandomGenerator(seed: 0)
    let backbone = try config.make(using: &rng)
    let backboneTensors = file.tensors.filter { !$0.name.hasPrefix(Self.prefix) }
    do {
      try backbone.load(SafeTensors(tensors: backboneTensors, metadata: file.metadata), strict: true, source: path)
    } catch let error as SafeTensorsError {
      throw EvaluationError(path, error.reason)
    }
    func part(_ name: String, _ shape: [Int]) throws -> Tensor {
      guard let t = file[Self.prefix + name], t.shape == shape else {
        throw EvaluationError(
          path, "\(Self.prefix + name) is missing or not of shape \(shape) (for \(info.classes.count) classes)")
      }
      return t
    }
    let c = info.classes.count
    guard c >= 1, let weight = file[Self.prefix + "weight"], weight.rank == 2, weight.shape[0] == c else {
      throw EvaluationError(path, "\(Self.prefix)weight is missing or does not have one row per class (\(c))")
    }
    let f = weight.shape[1]
    let bias = try part("bias", [c])
    let mean = try part("mean", [f])
    let invStd = try part("inv_std", [f])
    self.backbone = backbone
    normalization = BackboneWeights.input(of: file)
    head = LinearClassifier(
      mean: Array(UnsafeBufferPointer(start: mean.data, count: f)),
      invStd: Array(UnsafeBufferPointer(start: invStd.data, count: f)), weight: weight,
      bias: Array(UnsafeBufferPointer(start: bias.data, count: c)), steps: 0, finalLoss: .nan)
    self.info = info
  }
}

/// `pretext predict`: a classifier applied to every image of a folder (or list).
public enum Prediction {
  public struct Summary: Codable, Sendable {
    public var images: Int
    public var output: String
    /// Images per predicted class (the top one), by class name.
    public var counts: [String: Int]
    public var seconds: Double
  }

  /// Writes `output`, a CSV of `path,class,score` then `class_2,score_2 …` up to `top`:
  /// the classes with the highest softmax probabilities, best first (paths relative to
  /// the folder, in its byte-wise order).
  public static func run(
    classifier path: String, folder: String, output: String, top: Int = 1, batchSize: Int = 256,
    progress: (String) -> Void = { _ in }
  ) throws -> Summary {
    let clock = Stopwatch()
    guard top >= 1 else { throw EvaluationError("--top", "must be at least 1, got \(top)") }
    guard batchSize >= 1 else { throw EvaluationError("--batch-size", "must be at least 1, got \(batchSize)") }
    let classifier = try ClassifierFile(path: path)
    let classes = classifier.info.classes
    let k = min(top, classes.count)
    let preprocessing = try Preprocessing(config: classifier.backbone.config, stored: classifier.normalization)
    let images = try ImageFolder(path: folder, options: preprocessing.folderOptions)
    progress(images.summary)
    progress("predicting \(images.count) images with \(path) (\(classes.count) classes, features at \(classifier.info.depth))")
    var header = ["path", "class", "score"]
    for r in stride(from: 2, through: k, by: 1) { header += ["class_\(r)", "score_\(r)"] }
    var lines = [header.joined(separator: ",")]
    var counts: [String: Int] = [:]
    var start = 0
    while start < images.count {
      let indices = Array(start..<min(start + batchSize, images.count))
      let x = try ImageLoading.load(images, indices: indices, preprocessing: preprocessing)
      let depths = try FeatureExtractor.extract(classifier.backbone, images: x, batchSize: batchSize)
      guard let features = try LayerFeatures.candidate(classifier.info.depth, from: depths) else {
        throw EvaluationError(
          path, "names depth \(classifier.info.depth), which \(classifier.backbone.config.name) does not have")
      }
      let scores = try classifier.head.scores(features.values)
      let c = classes.count
      for (row, index) in indices.enumerated() {
        let logits = Array(UnsafeBufferPointer(start: scores.data + row * c, count: c))
        let peak = logits.max()!
        let exps = logits.map { Foundation.exp(Double($0 - peak)) }
        let total = exps.reduce(0, +)
        let best = (0..<c).sorted { exps[$0] != exps[$1] ? exps[$0] > exps[$1] : $0 < $1 }.prefix(k)
        counts[classes[best.first!], default: 0] += 1
        var fields = [csvField(images.files[index])]
        for j in best { fields += [csvField(classes[j]), String(format: "%.4f", exps[j] / total)] }
        lines.append(fields.joined(separator: ","))
      }
      start += indices.count
      progress("  \(start)/\(images.count) images")
    }
    try writeAtomically(Array((lines.joined(separator: "\n") + "\n").utf8), to: output)
    return Summary(images: images.count, output: output, counts: counts, seconds: clock.seconds)
  }
}
