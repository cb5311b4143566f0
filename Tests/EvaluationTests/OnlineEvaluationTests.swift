import Autograd
import Backbones
import Evaluation
import Foundation
import Vision
import XCTest

/// The label-free signals on matrices whose singular values and spread are known.
final class OnlineEvaluationTests: XCTestCase {
  /// Rows [2^k, f]: every ±1 combination of k orthonormal directions (the first k axes
  /// rotated by a Householder reflection) scaled by `scales`, so the matrix's singular
  /// values are scales·√(2^k) and the others are 0.
  func design(scales: [Double], width f: Int) throws -> Tensor {
    let k = scales.count
    // A Householder reflection I − 2vvᵀ/‖v‖² with v = (1, 2, …, f): orthonormal columns.
    let v = (0..<f).map { Double($0 + 1) }
    let vv = v.reduce(0) { $0 + $1 * $1 }
    func direction(_ axis: Int) -> [Double] { (0..<f).map { (($0 == axis) ? 1 : 0) - 2 * v[$0] * v[axis] / vv } }
    var rows: [Float] = []
    for r in 0..<(1 << k) {
      var x = [Double](repeating: 0, count: f)
      for j in 0..<k {
        let s: Double = (r >> j) & 1 == 1 ? 1 : -1
        let u = direction(j)
        for c in 0..<f { x[c] += s * scales[j] * u[c] }
      }
      rows += x.map { Float($0) }
    }
    return try Tensor(shape: [1 << k, f], rows)
  }

  func testRankMeIsTheEffectiveRankOfTheSingularValues() throws {
    // k equal singular values: p_k = 1/k, so exp(entropy) = k. The ε = 1e-7 of the
    // formula and the Float rounding of the rows (zero singular values come out near
    // 1e-7 of the others) move it by less than k·1e-4.
    for k in 1...4 {
      let rank = OnlineEvaluation.rankMe(try design(scales: [Double](repeating: 1.5, count: k), width: 8))
      XCTAssertEqual(rank, Double(k), accuracy: 1e-4 * Double(k) + 1e-4, "k = \(k)")
    }
    // Singular values in ratio 2 : 1 (not their squares): p = (2/3, 1/3).
    let expected = exp(-(2.0 / 3 * log(2.0 / 3) + 1.0 / 3 * log(1.0 / 3)))
    XCTAssertEqual(OnlineEvaluation.rankMe(try design(scales: [2, 1], width: 8)), expected, accuracy: 1e-3)
    // More rows than columns and more columns than rows give the same answer (the
    // smaller Gram matrix is used): the transpose has the same singular values.
    let wide = try design(scales: [3, 1, 1], width: 16)  // [8, 16]
    var transposed = [Float](repeating: 0, count: 8 * 16)
    for r in 0..<8 { for c in 0..<16 { transposed[c * 8 + r] = wide.data[r * 16 + c] } }
    XCTAssertEqual(
      OnlineEvaluation.rankMe(wide), OnlineEvaluation.rankMe(try Tensor(shape: [16, 8], transposed)), accuracy: 1e-6)
  }

  func testFeatureSpreadIsOneOnTheSphereAndZeroWhenCollapsed() throws {
    // The 2f signed unit vectors ±e_j: each dimension has mean 0 and variance 1/f, so
    // std·√f = 1 exactly (up to Float).
    let f = 6
    var rows: [Float] = []
    for j in 0..<f {
      for sign: Float in [1, -1] { rows += (0..<f).map { $0 == j ? 2 * sign : 0 } }  // length 2: normalized first
    }
    XCTAssertEqual(OnlineEvaluation.featureSpread(try Tensor(shape: [2 * f, f], rows)), 1, accuracy: 1e-6)
    // Every row the same direction (any length): no spread at all.
    let same = (0..<5).flatMap { i in (0..<f).map { Float($0 + 1) * Float(i + 1) } }
    XCTAssertEqual(OnlineEvaluation.featureSpread(try Tensor(shape: [5, f], same)), 0, accuracy: 1e-6)
  }

  /// Images that are all the same give the backbone one feature vector: the spread is 0
  /// and the evaluation warns that the features are collapsing.
  func testIdenticalFeaturesRaiseTheCollapseWarning() throws {
    var rng = RandomGenerator(seed: 3)
    let config = try BackbonePreset.config("resnet10-small", imageSize: 16, inChannels: 1, width: 4)
    let backbone = try config.make(using: &rng)
    let image = Image(width: 16, height: 16, channels: 1, filledWith: 90)
    var settings = OnlineEvaluationSettings()
    settings.signalImages = 8
    let evaluation = try OnlineEvaluation(
      settings, unlabeled: InMemoryImages([Image](repeating: image, count: 8)), backbone: config,
      featureCount: backbone.featureCount, normalization: .standard, using: &rng)
    let (metrics, warnings) = try evaluation.evaluate(step: 7, backbone: backbone)
    let values = Dictionary(metrics.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
    XCTAssertEqual(values["feature_spread"]!, 0, accuracy: 1e-6)
    XCTAssertNil(values["online_probe_top1"], "no labeled folder, no online probe")
    XCTAssertEqual(warnings.count, 1)
    XCTAssertTrue(warnings[0].hasPrefix("the features may be collapsing"), warnings[0])
    // The backbone is back in training mode.
    XCTAssertTrue(backbone.isTraining)
  }
}
