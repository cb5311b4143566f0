import Autograd
import Evaluation
import Foundation

// What the comparison report draws of a run's features: projection.json, the test
// features at the probe's depth in two dimensions (a PCA, see Evaluation's `PCA`).

/// `projection.json` in a run folder: test features drawn in two dimensions, coloured
/// by class. The PCA (of standardized features) is fitted on every test image; `points`
/// is a class-balanced subset (evenly spaced within each class, in folder order), which
/// is what the report draws.
public struct ProjectionFile: Codable, Sendable, Equatable {
  public struct Point: Codable, Sendable, Equatable {
    public var x: Double
    public var y: Double
    /// Index into `classes`.
    public var label: Int
    public init(x: Double, y: Double, label: Int) {
      self.x = x
      self.y = y
      self.label = label
    }
  }
  /// "pca of standardized features".
  public var method: String
  /// The backbone depth whose features are drawn.
  public var layer: String
  /// The labeled folder (its images are the points).
  public var folder: String
  /// Images the projection was fitted on.
  public var images: Int
  public var featureDimension: Int
  /// Share of the total (standardized) variance along each axis.
  public var explainedVariance: [Double]
  public var classes: [String]
  public var points: [Point]
  /// The same images (in the same order) mapped by t-SNE (Evaluation's `TSNE`) from
  /// their standardized features; absent from older files.
  public var tsne: [Point]?
  /// FNV-1a of the features and settings the file was made from (Compare's reuse rule);
  /// absent from older files.
  public var source: String?

  enum CodingKeys: String, CodingKey {
    case method, layer, folder, images, featureDimension = "feature_dimension"
    case explainedVariance = "explained_variance", classes, points, tsne, source
  }

  public init(
    method: String, layer: String, folder: String, images: Int, featureDimension: Int, explainedVariance: [Double],
    classes: [String], points: [Point], tsne: [Point]? = nil
  ) {
    self.method = method
    self.layer = layer
    self.folder = folder
    self.images = images
    self.featureDimension = featureDimension
    self.explainedVariance = explainedVariance
    self.classes = classes
    self.points = points
    self.tsne = tsne
  }

  public static func path(in runDirectory: String) -> String {
    (runDirectory as NSString).appendingPathComponent("projection.json")
  }

  /// The PCA of `features` [N, F], each dimension standardized, and up to `perClass`
  /// points of each class.
  public static func pca(
    features: Tensor, labels: [Int], classes: [String], layer: String, folder: String, perClass: Int, tsne: Bool = false
  ) throws -> ProjectionFile {
    let n = features.shape[0], f = features.shape[1]
    guard labels.count == n else { throw ConfigError("projection: \(labels.count) labels for \(n) feature rows") }
    let pca = try PCA(features, components: 2, standardize: true)
    var byClass = [[Int]](repeating: [], count: classes.count)
    for (i, y) in labels.enumerated() { byClass[y].append(i) }
    var points: [Point] = []
    var shown: [Int] = []
    for members in byClass where !members.isEmpty {
      let take = min(perClass, members.count)
      for j in 0..<take {
        let i = members[j * members.count / take]
        let xy = pca.project(features.data + i * f)
        points.append(Point(x: xy[0], y: xy[1], label: labels[i]))
        shown.append(i)
      }
    }
    var map: [Point]?
    if tsne && shown.count >= 2 {
      let standardized = standardizedRows(features, shown)
      let xy = try TSNE.embed(standardized, count: shown.count, dimension: f, start: points.map { ($0.x, $0.y) })
      map = zip(xy, shown).map { Point(x: $0.0.x, y: $0.0.y, label: labels[$0.1]) }
    }
    return ProjectionFile(
      method: "pca of standardized features", layer: layer, folder: folder, images: n, featureDimension: f,
      explainedVariance: pca.explainedRatios, classes: classes, points: points, tsne: map)
  }

  /// Rows `rows` of `features` [N, F], each dimension standardized over all N rows (a
  /// constant dimension becomes 0), as the PCA and the linear probe see them.
  static func standardizedRows(_ features: Tensor, _ rows: [Int]) -> [Float] {
    let (n, f) = (features.shape[0], features.shape[1])
    let p = features.data
    var mean = [Double](repeating: 0, count: f)
    var square = [Double](repeating: 0, count: f)
    for r in 0..<n {
      for c in 0..<f {
        let v = Double(p[r * f + c])
        mean[c] += v
        square[c] += v * v
      }
    }
    let inverseStd = (0..<f).map { c -> Double in
      mean[c] /= Double(n)
      let variance = square[c] / Double(n) - mean[c] * mean[c]
      return variance > 1e-12 ? 1 / variance.squareRoot() : 0
    }
    return rows.flatMap { r in (0..<f).map { c in Float((Double(p[r * f + c]) - mean[c]) * inverseStd[c]) } }
  }
}
