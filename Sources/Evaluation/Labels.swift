import Autograd
import Foundation

/// Top-1 and top-5 accuracy in percent.
public struct Accuracy: Codable, Sendable, Equatable {
  public var top1: Double
  public var top5: Double
  public init(top1: Double, top5: Double) {
    self.top1 = top1
    self.top5 = top5
  }

  /// Accuracy of class scores `scores` [N, C] (higher is better) against `labels`.
  /// A class's rank counts the classes scored strictly higher plus equal scores of
  /// lower index, so ties are broken the same way every time. Top-5 is top-C when there
  /// are fewer than 5 classes.
  public static func of(scores: Tensor, labels: [Int]) -> Accuracy {
    let (n, c) = (scores.shape[0], scores.shape[1])
    precondition(labels.count == n, "Accuracy: \(labels.count) labels for \(n) score rows")
    guard n > 0 else { return Accuracy(top1: 0, top5: 0) }
    var hit1 = 0, hit5 = 0
    let p = scores.data
    for i in 0..<n {
      let row = p + i * c
      let y = labels[i]
      let s = row[y]
      var rank = 0
      for j in 0..<c where row[j] > s || (row[j] == s && j < y) { rank += 1 }
      if rank < 1 { hit1 += 1 }
      if rank < 5 { hit5 += 1 }
    }
    return Accuracy(top1: 100 * Double(hit1) / Double(n), top5: 100 * Double(hit5) / Double(n))
  }
}

/// Deterministic, class-balanced subsets of a labeled set.
public enum LabelSubset {
  /// How many labeled images to use per class.
  public enum Budget: Sendable, Equatable, Codable {
    case all
    case perClass(Int)
    case fraction(Double)

    /// As reports record it: "all", "N per class" or "fraction F".
    public var text: String {
      switch self {
      case .all: return "all"
      case .perClass(let n): return "\(n) per class"
      case .fraction(let f): return "fraction \(f)"
      }
    }
  }

  /// Indices (ascending) of the images kept under `budget`: per class, the first
  /// images of a seeded permutation of that class's images, so a larger budget with the
  /// same seed contains the smaller one.
  ///
  /// - Throws: `EvaluationError` naming the class when it has fewer images than
  ///   `perClass` asks for, or for a budget outside its range.
  public static func select(
    labels: [Int], classNames: [String], budget: Budget, seed: UInt64
  ) throws -> [Int] {
    let byClass = indicesByClass(labels, classes: classNames.count)
    var keep: [Int]
    switch budget {
    case .all:
      return Array(labels.indices)
    case .perClass(let n):
      guard n >= 1 else { throw EvaluationError("--labels-per-class", "must be at least 1, got \(n)") }
      if let short = byClass.indices.first(where: { byClass[$0].count < n }) {
        throw EvaluationError(
          "--labels-per-class \(n)",
          "class \"\(classNames[short])\" has only \(byClass[short].count) training images; choose at most "
            + "\(byClass.map(\.count).min() ?? 0) per class, or --label-fraction")
      }
      keep = take(byClass, counts: byClass.map { _ in n }, seed: seed)
    case .fraction(let f):
      guard f > 0 && f <= 1 else { throw EvaluationError("--label-fraction", "must be in (0, 1], got \(f)") }
      keep = take(byClass, counts: byClass.map { max(1, Int((Double($0.count) * f).rounded())) }, seed: seed)
    }
    keep.sort()
    return keep
  }

  /// Splits positions `0..<labels.count` into training and validation parts,
  /// class-balanced: `fraction` of each class (rounded, at least 1) goes to validation,
  /// chosen by a seeded permutation. Returns nil when some class has fewer than two
  /// images (no validation image could be spared).
  public static func validationSplit(
    labels: [Int], classes: Int, fraction: Double, seed: UInt64
  ) -> (train: [Int], validation: [Int])? {
    let byClass = indicesByClass(labels, classes: classes)
    guard byClass.allSatisfy({ $0.count >= 2 }) else { return nil }
    let counts = byClass.map { min($0.count - 1, max(1, Int((Double($0.count) * fraction).rounded()))) }
    let validation = take(byClass, counts: counts, seed: seed).sorted()
    let held = Set(validation)
    return (labels.indices.filter { !held.contains($0) }, validation)
  }

  static func indicesByClass(_ labels: [Int], classes: Int) -> [[Int]] {
    var byClass = [[Int]](repeating: [], count: classes)
    for (i, y) in labels.enumerated() { byClass[y].append(i) }
    return byClass
  }

  /// The first `counts[c]` entries of a permutation of each class's list (one generator,
  /// classes in order).
  static func take(_ byClass: [[Int]], counts: [Int], seed: UInt64) -> [Int] {
    var rng = RandomGenerator(seed: seed)
    var out: [Int] = []
    for (c, members) in byClass.enumerated() {
      let order = rng.permutation(members.count)
      out += order.prefix(counts[c]).map { members[$0] }
    }
    return out
  }
}
