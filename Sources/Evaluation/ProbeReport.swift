import Backbones
import Foundation
import NN
import Support

// The schema of probe.json (the report of `Probe.run`, read back by `Probe.reusableReport`
// and the comparison report), and how it is written.

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

extension ModelResult {
  /// This model's top-1 points minus `baseline`'s (kNN: nil unless both evaluated kNN).
  func gain(over baseline: ModelResult) -> Gain {
    Gain(
      linear: linear.top1 - baseline.linear.top1, knn: knn.flatMap { x in baseline.knn.map { x.top1 - $0.top1 } })
  }
}

extension Probe {
  /// Writes `report` as indented JSON with sorted keys, atomically (creates the folder).
  ///
  /// - Throws: `EvaluationError` naming the folder when it cannot be created.
  public static func write(_ report: ProbeReport, to path: String) throws { try writeReport(report, to: path) }
}
