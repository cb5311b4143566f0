import Autograd
import XCTest

/// Winograd F(2×2, 3×3) against an exact (float64) direct convolution, within the
/// forward error bound of its float32 arithmetic; and the shapes it refuses.
final class WinogradTests: XCTestCase {
  /// The bound is the standard one for a bilinear algorithm (Higham, "Accuracy and
  /// Stability of Numerical Algorithms", §3.1): every computed value is within γ_k of the
  /// same computation on absolute values, k the roundings along its longest path —
  /// 2 + 2 in the weight transform (sums of three, twice), 1 + 1 in the input transform,
  /// 1 for the product, C − 1 in the GEMM's sum over channels, 2 + 2 in the output
  /// transform: k = C + 10. So |ŷ − y| ≤ γ_{C+10} · |Aᵀ|(Σ_c |G||g||Gᵀ| ⊙ |Bᵀ||d||B|)|A|.
  func testForwardIsWithinItsRoundingBoundOfTheExactConvolution() throws {
    var rng = RandomGenerator(seed: 21)
    let (n, c, o, h, w) = (3, 20, 17, 9, 8)
    let x = Tensor.uniform([n, c, h, w], low: -1, high: 1, using: &rng)
    let weight = Tensor.uniform([o, c, 3, 3], low: -1, high: 1, using: &rng)
    let y = try conv2d(x, weight: weight, options: Conv2dOptions(padding: 1, algorithm: .winograd))
    XCTAssertEqual(y.shape, [n, o, h, w])
    let u = Double(Float.ulpOfOne) / 2
    let k = Double(c + 10)
    let gamma = k * u / (1 - k * u)
    func px(_ j: Int, _ ci: Int, _ yy: Int, _ xx: Int) -> Double {
      yy < 0 || yy >= h || xx < 0 || xx >= w ? 0 : Double(x.data[((j * c + ci) * h + yy) * w + xx])
    }
    // The transforms with absolute values (|Bᵀ|, |G|, |Aᵀ|), on 4×4 / 4×3 arrays.
    let bt: [[Double]] = [[1, 0, 1, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 0, 1]]
    let g: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0, 0, 1]]
    let at: [[Double]] = [[1, 1, 1, 0], [0, 1, 1, 1]]
    func sandwich(_ l: [[Double]], _ m: [[Double]], _ r: [[Double]]) -> [[Double]] {  // l · m · rᵀ
      let lm = l.map { row in (0..<m[0].count).map { j in zip(row, m).reduce(0) { $0 + $1.0 * $1.1[j] } } }
      return lm.map { row in r.map { rr in zip(row, rr).reduce(0) { $0 + $1.0 * $1.1 } } }
    }
    let absU = (0..<o).map { oc in
      (0..<c).map { ci in
        sandwich(g, (0..<3).map { a in (0..<3).map { b in abs(Double(weight.data[((oc * c + ci) * 3 + a) * 3 + b])) } }, g)
      }
    }
    var worst = 0.0
    for j in 0..<n {
      for ty in 0..<(h + 1) / 2 {
        for tx in 0..<(w + 1) / 2 {
          let absV = (0..<c).map { ci in
            sandwich(bt, (0..<4).map { a in (0..<4).map { b in abs(px(j, ci, 2 * ty - 1 + a, 2 * tx - 1 + b)) } }, bt)
          }
          for oc in 0..<o {
            var m = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
            for ci in 0..<c { for a in 0..<4 { for b in 0..<4 { m[a][b] += absU[oc][ci][a][b] * absV[ci][a][b] } } }
            let bound = sandwich(at, m, at)
            for a in 0..<2 where 2 * ty + a < h {
              for b in 0..<2 where 2 * tx + b < w {
                let (yy, xx) = (2 * ty + a, 2 * tx + b)
                var exact = 0.0
                for ci in 0..<c {
                  for ky in 0..<3 {
                    for kx in 0..<3 {
                      exact += Double(weight.data[((oc * c + ci) * 3 + ky) * 3 + kx]) * px(j, ci, yy + ky - 1, xx + kx - 1)
                    }
                  }
                }
                let error = abs(Double(y.data[((j * o + oc) * h + yy) * w + xx]) - exact)
                XCTAssertLessThanOrEqual(error, gamma * bound[a][b], "image \(j) channel \(oc) at (\(yy), \(xx))")
                worst = max(worst, error / (gamma * bound[a][b]))
              }
            }
          }
        }
      }
    }
    // A bound that is never approached would say nothing: the rounding is really there.
    XCTAssertGreaterThan(worst, 0)
  }

  /// Winograd only where F(2×2, 3×3) applies; elsewhere a clear error, not a wrong result.
  func testWinogradRefusesShapesItCannotCompute() throws {
    for (options, weight) in [
      (Conv2dOptions(stride: 2, padding: 1, algorithm: .winograd), [2, 2, 3, 3]),
      (Conv2dOptions(padding: 0, algorithm: .winograd), [2, 2, 3, 3]),
      (Conv2dOptions(padding: 2, dilation: 2, algorithm: .winograd), [2, 2, 3, 3]),
      (Conv2dOptions(padding: 1, algorithm: .winograd), [2, 2, 1, 1]),
      (Conv2dOptions(padding: 1, groups: 2, algorithm: .winograd), [2, 1, 3, 3]),
    ] {
      XCTAssertThrowsError(try conv2d(Tensor.zeros([1, 2, 5, 5]), weight: Tensor.zeros(weight), options: options)) {
        XCTAssertTrue("\($0)".contains("Winograd F(2×2, 3×3) needs"), "\($0)")
      }
    }
  }
}
