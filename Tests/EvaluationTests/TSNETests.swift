import Autograd
import Evaluation
import Foundation
import XCTest

/// t-SNE on clusters whose neighbourhoods are known.
final class TSNETests: XCTestCase {
  /// Four clusters in 10 dimensions, their centres 8 apart along their own axes and the
  /// points spread with std 0.5 around them, and one dimension of wide noise (std 6) that
  /// dominates the variance. In 10-D every point's nearest neighbour is of its cluster
  /// (within-cluster distances ~0.5·√(2·9) plus the noise axis, against ≥ 8·√2 between);
  /// in the PCA start the first axis is mostly the noise. t-SNE keeps neighbourhoods, so
  /// in its map nearly every point's nearest neighbour is of its cluster again.
  func testClustersComeApartAndTheMapIsReproducible() throws {
    var rng = RandomGenerator(seed: 11)
    let n = 160, d = 10
    var x = [Float](repeating: 0, count: n * d)
    var labels: [Int] = []
    for i in 0..<n {
      let c = i % 4
      labels.append(c)
      for k in 0..<9 { x[i * d + k] = 0.5 * rng.nextNormal() + (k == c ? 8 : 0) }
      x[i * d + 9] = 6 * rng.nextNormal()
    }
    // The start: the noise axis and the first cluster axis (what a PCA would lead with).
    let start = (0..<n).map { (x: Double(x[$0 * d + 9]), y: Double(x[$0 * d])) }
    var options = TSNE.Options()
    options.iterations = 500
    let map = try TSNE.embed(x, count: n, dimension: d, start: start, options: options)
    func agreement(_ points: [(x: Double, y: Double)]) -> Double {
      var hits = 0
      for i in 0..<n {
        var best = -1
        var bestDistance = Double.infinity
        for j in 0..<n where j != i {
          let dx = points[i].x - points[j].x, dy = points[i].y - points[j].y
          if dx * dx + dy * dy < bestDistance { (best, bestDistance) = (j, dx * dx + dy * dy) }
        }
        if labels[best] == labels[i] { hits += 1 }
      }
      return Double(hits) / Double(n)
    }
    // The start mixes the clusters (the noise axis carries no cluster; the other axis
    // separates cluster 0 only): about half the neighbours agree.
    XCTAssertLessThan(agreement(start), 0.8)
    // Clusters this far apart in 10-D are separate in a converged map; a few points at a
    // cluster's edge may still sit by another's after 500 iterations.
    XCTAssertGreaterThanOrEqual(agreement(map), 0.95)
    XCTAssertTrue(map.allSatisfy { $0.x.isFinite && $0.y.isFinite })
    // Deterministic: the same input gives the same map, to the bit.
    let again = try TSNE.embed(x, count: n, dimension: d, start: start, options: options)
    XCTAssertTrue(zip(map, again).allSatisfy { $0.0.x == $0.1.x && $0.0.y == $0.1.y })
  }

  func testTooFewPointsIsAClearError() {
    XCTAssertThrowsError(try TSNE.embed([1, 2], count: 1, dimension: 2, start: [(0, 0)])) {
      XCTAssertTrue("\($0)".contains("t-SNE: needs at least 2 points"), "\($0)")
    }
  }
}
