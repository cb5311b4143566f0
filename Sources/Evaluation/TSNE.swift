import Autograd
import Foundation

/// A 2-D map of feature vectors that keeps neighbourhoods, for the report's cluster
/// pictures: exact t-SNE (van der Maaten & Hinton 2008), with the optimization of the
/// reference implementation and of scikit-learn — perplexity-calibrated Gaussian
/// affinities, symmetrized; a Student-t kernel in the map; early exaggeration 12 for the
/// first 250 iterations with momentum 0.5, then momentum 0.8; per-coordinate adaptive
/// gains; learning rate max(N / 12 / 4, 50) (Belkina et al. 2019, scikit-learn's `auto`).
///
/// Exact: every iteration costs N² pairs; the report's 2,000 points take about 15 s on 2 cores
/// (Barnes–Hut would pay off only far beyond that). Deterministic: it starts from a
/// given layout (the report uses the PCA's, scaled to a standard deviation of 1e-4, as
/// scikit-learn's `init="pca"`), and every sum runs in a fixed order whatever the
/// thread count.
public enum TSNE {
  public struct Options: Sendable {
    public var perplexity = 30.0
    public var iterations = 1000
    public var exaggeration = 12.0
    public var exaggerationIterations = 250
    public init() {}
  }

  /// The map of `points` (N rows of `dimension` values, row-major) → N (x, y) pairs.
  ///
  /// - Parameter start: the initial layout, N (x, y) pairs (rescaled to std 1e-4).
  public static func embed(
    _ points: [Float], count n: Int, dimension d: Int, start: [(x: Double, y: Double)], options: Options = Options()
  ) throws -> [(x: Double, y: Double)] {
    guard n >= 2, points.count == n * d, start.count == n else {
      throw EvaluationError("t-SNE", "needs at least 2 points with \(d) values each and a start for each, got \(n)")
    }
    let p = affinities(points, count: n, dimension: d, perplexity: min(options.perplexity, Double(n - 1) / 3))
    // The start, centred and scaled so that the first coordinate has std 1e-4.
    var y = [Double](repeating: 0, count: 2 * n)
    let mean = (start.reduce(0) { $0 + $1.x } / Double(n), start.reduce(0) { $0 + $1.y } / Double(n))
    let spread = (start.reduce(0) { $0 + ($1.x - mean.0) * ($1.x - mean.0) } / Double(n)).squareRoot()
    let scale = spread > 0 ? 1e-4 / spread : 1
    for i in 0..<n {
      y[2 * i] = (start[i].x - mean.0) * scale
      y[2 * i + 1] = (start[i].y - mean.1) * scale
    }
    let rate = max(Double(n) / options.exaggeration / 4, 50)
    var update = [Double](repeating: 0, count: 2 * n)
    var gains = [Double](repeating: 1, count: 2 * n)
    var gradient = [Double](repeating: 0, count: 2 * n)
    var rowNormalizer = [Double](repeating: 0, count: n)
    for iteration in 0..<options.iterations {
      let early = iteration < options.exaggerationIterations
      let exaggeration = early ? options.exaggeration : 1
      let momentum = early ? 0.5 : 0.8
      // Per row: the attraction Σ_j p_ij q̃_ij (y_i − y_j), the repulsion
      // Σ_j q̃_ij² (y_i − y_j) and Σ_j q̃_ij, with q̃_ij = 1 / (1 + |y_i − y_j|²).
      var attraction = [Double](repeating: 0, count: 2 * n)
      var repulsion = [Double](repeating: 0, count: 2 * n)
      y.withUnsafeBufferPointer { yb in
        p.withUnsafeBufferPointer { pb in
          attraction.withUnsafeMutableBufferPointer { ab in
            repulsion.withUnsafeMutableBufferPointer { rb in
              rowNormalizer.withUnsafeMutableBufferPointer { zb in
                nonisolated(unsafe) let (yp, pp, ap, rp, zp) = (yb, pb, ab, rb, zb)
                Parallel.forChunks(n, minChunk: 64) { rows in
                  for i in rows {
                    let (yi0, yi1) = (yp[2 * i], yp[2 * i + 1])
                    var a0 = 0.0, a1 = 0.0, r0 = 0.0, r1 = 0.0, z = 0.0
                    for j in 0..<n where j != i {
                      let dx = yi0 - yp[2 * j], dy = yi1 - yp[2 * j + 1]
                      let q = 1 / (1 + dx * dx + dy * dy)
                      let pq = pp[i * n + j] * q
                      a0 += pq * dx
                      a1 += pq * dy
                      r0 += q * q * dx
                      r1 += q * q * dy
                      z += q
                    }
                    ap[2 * i] = a0
                    ap[2 * i + 1] = a1
                    rp[2 * i] = r0
                    rp[2 * i + 1] = r1
                    zp[i] = z
                  }
                }
              }
            }
          }
        }
      }
      let normalizer = max(rowNormalizer.reduce(0, +), 1e-300)
      for k in 0..<(2 * n) { gradient[k] = 4 * (exaggeration * attraction[k] - repulsion[k] / normalizer) }
      for k in 0..<(2 * n) {
        // Delta-bar-delta gains: grow where the gradient keeps its direction against the
        // last update's, shrink where it flips.
        gains[k] = (gradient[k] > 0) != (update[k] > 0) ? gains[k] + 0.2 : max(0.01, gains[k] * 0.8)
        update[k] = momentum * update[k] - rate * gains[k] * gradient[k]
        y[k] += update[k]
      }
      var centre = (0.0, 0.0)
      for i in 0..<n {
        centre.0 += y[2 * i]
        centre.1 += y[2 * i + 1]
      }
      for i in 0..<n {
        y[2 * i] -= centre.0 / Double(n)
        y[2 * i + 1] -= centre.1 / Double(n)
      }
    }
    return (0..<n).map { (y[2 * $0], y[2 * $0 + 1]) }
  }

  /// The symmetric affinities p_ij = (p_j|i + p_i|j) / 2N, where p_j|i ∝ exp(−β_i·|x_i − x_j|²)
  /// with β_i found by bisection so that the row's perplexity 2^H is `perplexity`.
  static func affinities(_ x: [Float], count n: Int, dimension d: Int, perplexity: Double) -> [Double] {
    var distances = [Double](repeating: 0, count: n * n)
    var conditional = [Double](repeating: 0, count: n * n)
    x.withUnsafeBufferPointer { xb in
      distances.withUnsafeMutableBufferPointer { db in
        conditional.withUnsafeMutableBufferPointer { cb in
          nonisolated(unsafe) let (xp, dp, cp) = (xb, db, cb)
          Parallel.forChunks(n, minChunk: 32) { rows in
            for i in rows {
              for j in 0..<n {
                var s = 0.0
                for c in 0..<d {
                  let v = Double(xp[i * d + c]) - Double(xp[j * d + c])
                  s += v * v
                }
                dp[i * n + j] = s
              }
              // Bisection on β for the entropy log(perplexity) (natural log), as the
              // reference implementation's x2p.
              let target = log(perplexity)
              var beta = 1.0, lo = -Double.infinity, hi = Double.infinity
              let nearest = (0..<n).filter { $0 != i }.map { dp[i * n + $0] }.min() ?? 0
              for _ in 0..<100 {
                var sum = 0.0, weighted = 0.0
                for j in 0..<n where j != i {
                  // Shifted by the nearest distance: the same probabilities, no underflow.
                  let w = exp(-beta * (dp[i * n + j] - nearest))
                  cp[i * n + j] = w
                  sum += w
                  weighted += w * (dp[i * n + j] - nearest)
                }
                let entropy = log(sum) + beta * weighted / sum
                for j in 0..<n where j != i { cp[i * n + j] /= sum }
                let gap = entropy - target
                if abs(gap) < 1e-5 { break }
                if gap > 0 {
                  lo = beta
                  beta = hi.isFinite ? (beta + hi) / 2 : beta * 2
                } else {
                  hi = beta
                  beta = lo.isFinite ? (beta + lo) / 2 : beta / 2
                }
              }
              cp[i * n + i] = 0
            }
          }
        }
      }
    }
    var p = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      for j in 0..<n { p[i * n + j] = max((conditional[i * n + j] + conditional[j * n + i]) / (2 * Double(n)), 1e-12) }
      p[i * n + i] = 0
    }
    return p
  }
}
