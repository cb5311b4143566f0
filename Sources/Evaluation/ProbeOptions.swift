import Backbones
import Foundation

// What a probe is asked to do: the backbone, the labeled folders, the label budget, the
// depths to compare, the classifiers and where the results go; and which values of these
// settings a probe accepts.

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
  public var budgetText: String { budget.text }

  /// The kNN settings when kNN is evaluated (nil: off), as probe.json records them.
  var evaluatedKNN: KNNSettings? { knnEnabled ? knn : nil }

  /// Throws `EvaluationError` naming the option when a setting is out of its range.
  func validate() throws {
    try classifier.validate()
    try knn.validate()
    guard validationFraction > 0 && validationFraction < 1 else {
      throw EvaluationError("--validation-fraction", "must be in (0, 1), got \(validationFraction)")
    }
    guard extractionBatchSize >= 1 else {
      throw EvaluationError("--batch-size", "must be at least 1, got \(extractionBatchSize)")
    }
  }
}
