import Autograd
import Evaluation
import Foundation
import XCTest

/// PCA on data whose covariance is known exactly: a full two-level factorial design
/// (every ±1 combination) has orthogonal, zero-mean columns, so rows Σ_k s_k·σ_k·u_k with
/// orthonormal u_k have covariance Σ_k σ_k²·u_k·u_kᵀ · N/(N − 1). (Tolerances allow for the
/// rows being Float.)
final class PCATests: XCTestCase {
  /// Rows [2^m, F] of the design for the given scales and orthonormal directions.
  func design(scales: [Double], directions: [[Double]], offset: [Double]) -> [Float] {
    let m = scales.count, f = directions[0].count
    var rows: [Float] = []
    for r in 0..<(1 << m) {
      var x = offset
      for k in 0..<m {
        let s: Double = (r >> k) & 1 == 1 ? 1 : -1
        for j in 0..<f { x[j] += s * scales[k] * directions[k][j] }
      }
      rows += x.map { Float($0) }
    }
    return rows
  }

  func assertSameDirection(_ a: [Double], _ b: [Double], file: StaticString = #filePath, line: UInt = #line) {
    // Unit vectors are equal up to sign; the sign rule makes the largest entry positive.
    let largest = b.indices.max { abs(b[$0]) < abs(b[$1]) }!
    let expected = b[largest] < 0 ? b.map { -$0 } : b
    for (x, y) in zip(a, expected) { XCTAssertEqual(x, y, accuracy: 1e-5, file: file, line: line) }
  }

  func testThreeDimensionalRotatedDesign() throws {
    // R = 1/3 [[1, 2, 2], [2, 1, −2], [2, −2, 1]] is orthogonal; its columns are the axes.
    let r: [[Double]] = [[1, 2, 2], [2, 1, -2], [2, -2, 1]].map { $0.map { $0 / 3 } }
    let axes = (0..<3).map { c in (0..<3).map { r[$0][c] } }
    let rows = design(scales: [3, 2, 1], directions: axes, offset: [10, -5, 2])
    let pca = try PCA(rows: rows, count: 8, dimension: 3, components: 2)
    XCTAssertEqual(pca.mean[0], 10, accuracy: 1e-5)
    XCTAssertEqual(pca.mean[1], -5, accuracy: 1e-5)
    // Variances 9, 4 (and 1) times 8/7; the total is their sum.
    XCTAssertEqual(pca.variances[0], 9 * 8 / 7, accuracy: 1e-5)
    XCTAssertEqual(pca.variances[1], 4 * 8 / 7, accuracy: 1e-5)
    XCTAssertEqual(pca.totalVariance, 14 * 8 / 7, accuracy: 1e-5)
    XCTAssertEqual(pca.explainedRatios[0], 9.0 / 14, accuracy: 1e-5)
    assertSameDirection(pca.components[0], axes[0])
    assertSameDirection(pca.components[1], axes[1])
    // Projection: the first row is (−3, −2, −1) in the design's frame.
    let coords = rows.withUnsafeBufferPointer { pca.project($0.baseAddress!) }
    let sign0 = pca.components[0][0] * axes[0][0] > 0 ? 1.0 : -1.0
    XCTAssertEqual(coords[0], -3 * sign0, accuracy: 1e-5)
  }

  /// More dimensions than the subspace the iteration keeps (40 > 16), rank 4: the
  /// subspace-iteration path, with columns that vanish once the range is found.
  func testWideLowRankDesign() throws {
    let f = 40
    var rng = RandomGenerator(seed: 3)
    // Four orthonormal directions from Gram–Schmidt on random vectors.
    var directions: [[Double]] = []
    while directions.count < 4 {
      var v = (0..<f).map { _ in Double(rng.nextNormal()) }
      for u in directions {
        let d = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
        v = zip(v, u).map { $0 - d * $1 }
      }
      let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
      directions.append(v.map { $0 / norm })
    }
    let rows = design(scales: [5, 3, 2, 1], directions: directions, offset: [Double](repeating: 1, count: f))
    let tensor = Tensor.zeros([16, f])
    for (i, v) in rows.enumerated() { tensor.data[i] = v }
    let pca = try PCA(tensor, components: 2)
    XCTAssertEqual(pca.variances[0], 25 * 16 / 15, accuracy: 1e-4)
    XCTAssertEqual(pca.variances[1], 9 * 16 / 15, accuracy: 1e-4)
    XCTAssertEqual(pca.totalVariance, 39 * 16 / 15, accuracy: 1e-4)
    assertSameDirection(pca.components[0], directions[0])
    assertSameDirection(pca.components[1], directions[1])
    // The same data give the same picture.
    XCTAssertEqual(try PCA(tensor, components: 2), pca)
  }

  /// Standardized: the correlation matrix. Two uncorrelated dimensions of scales 100 and
  /// 1 carry equal variance once standardized; a constant dimension drops out.
  func testStandardizedPCA() throws {
    let rows = design(scales: [100, 1], directions: [[1, 0, 0], [0, 1, 0]], offset: [0, 0, 7])
    let raw = try PCA(rows: rows, count: 4, dimension: 3, components: 2)
    XCTAssertGreaterThan(raw.explainedRatios[0], 0.999)
    let standardized = try PCA(rows: rows, count: 4, dimension: 3, components: 2, standardize: true)
    XCTAssertEqual(standardized.variances[0], 1, accuracy: 1e-9)
    XCTAssertEqual(standardized.variances[1], 1, accuracy: 1e-9)
    XCTAssertEqual(standardized.totalVariance, 2, accuracy: 1e-9)
    XCTAssertEqual(standardized.scales[2], 0)
    // Standardized, each design point is (±√(3/4), ±√(3/4)) (σ² = 4/3 · scale²); the two
    // equal eigenvalues leave the axes free to rotate, but not the point's distance.
    let point = rows.withUnsafeBufferPointer { standardized.project($0.baseAddress!) }
    XCTAssertEqual(point.map { $0 * $0 }.reduce(0, +), 1.5, accuracy: 1e-9)
  }

  /// Shapes that do not fit are a `PCAError`, never a crash.
  func testShapeErrors() throws {
    XCTAssertThrowsError(try PCA(rows: [1, 2], count: 1, dimension: 2)) { XCTAssertTrue($0 is PCAError) }
    XCTAssertThrowsError(try PCA(rows: [1, 2, 3], count: 2, dimension: 2)) { XCTAssertTrue($0 is PCAError) }
    XCTAssertThrowsError(try PCA(rows: [1, 2, 3, 4], count: 2, dimension: 2, components: 3)) {
      XCTAssertTrue($0 is PCAError)
    }
    XCTAssertThrowsError(try PCA(Tensor.zeros([4]))) { XCTAssertTrue($0 is PCAError) }
  }
}
