import Autograd
import Foundation

// The principal axes of a set of feature vectors, and each vector's coordinates along
// them (the comparison report draws test features in two dimensions with it).

/// Why a PCA could not be fitted: the rows do not have the shape the call describes, or
/// more components were asked for than the rows have dimensions.
public struct PCAError: Error, CustomStringConvertible, Sendable {
  public let description: String
  init(_ description: String) { self.description = description }
}

/// Principal component analysis of row vectors, for drawing features in two dimensions.
/// With `standardize`, each dimension is first scaled to unit variance (PCA of the
/// correlation matrix): a few large-magnitude channels, common in ViT features, then do
/// not fill the first component alone, and the picture shows what a linear probe (which
/// standardizes its inputs with BatchNorm) sees.
///
/// The covariance C [F, F] of the centred rows is formed once (in Double); its leading
/// eigenvectors come from subspace iteration (C·Q then re-orthonormalization, with a few
/// more columns than asked for so the leading ones converge fast), finished by a
/// Rayleigh–Ritz step: the small matrix Qᵀ·C·Q is diagonalized exactly with Jacobi
/// rotations. When F is at most the subspace width the subspace is the whole space and
/// the result is the exact eigen-decomposition.
public struct PCA: Sendable, Equatable {
  /// [F]: the mean row.
  public let mean: [Double]
  /// [F]: what each centred dimension is multiplied by before projecting (1 / its
  /// standard deviation when standardizing, 1 otherwise; 0 for a constant dimension).
  public let scales: [Double]
  /// k unit vectors of length F, by decreasing variance. Signs are fixed so that each
  /// vector's largest-magnitude entry is positive (the same data give the same picture).
  public let components: [[Double]]
  /// The variance of the (scaled) data along each component (eigenvalues of C, unbiased:
  /// / (N − 1)).
  public let variances: [Double]
  /// The trace of C: the (scaled) data's total variance.
  public let totalVariance: Double

  /// The share of the total variance along each component.
  public var explainedRatios: [Double] { variances.map { totalVariance > 0 ? $0 / totalVariance : 0 } }

  /// Fits `components` principal components to `rows` [N, F] (row-major).
  ///
  /// - Parameter seed: seeds the starting subspace (the result does not depend on it
  ///   beyond rounding once converged).
  public init(
    rows x: [Float], count n: Int, dimension f: Int, components k: Int = 2, standardize: Bool = false, seed: UInt64 = 0
  ) throws {
    guard n >= 2, f >= 1, x.count == n * f else {
      throw PCAError("PCA: needs at least 2 rows of \(f) values, got \(x.count) values for \(n) rows")
    }
    guard k >= 1, k <= f else { throw PCAError("PCA: \(k) components asked of \(f)-dimensional rows") }
    // Mean and covariance (upper triangle accumulated, then mirrored).
    var mean = [Double](repeating: 0, count: f)
    for i in 0..<n {
      for j in 0..<f { mean[j] += Double(x[i * f + j]) }
    }
    for j in 0..<f { mean[j] /= Double(n) }
    var cov = [Double](repeating: 0, count: f * f)
    var centred = [Double](repeating: 0, count: f)
    for i in 0..<n {
      for j in 0..<f { centred[j] = Double(x[i * f + j]) - mean[j] }
      for a in 0..<f {
        let va = centred[a]
        if va == 0 { continue }
        let rowStart = a * f
        for b in a..<f { cov[rowStart + b] += va * centred[b] }
      }
    }
    for a in 0..<f {
      for b in a..<f {
        let v = cov[a * f + b] / Double(n - 1)
        cov[a * f + b] = v
        cov[b * f + a] = v
      }
    }
    var scales = [Double](repeating: 1, count: f)
    if standardize {
      // Correlation matrix: C_ab / (σ_a σ_b); a constant dimension drops out.
      scales = (0..<f).map { j in
        let sd = cov[j * f + j].squareRoot()
        return sd > 1e-12 ? 1 / sd : 0
      }
      for a in 0..<f {
        for b in 0..<f { cov[a * f + b] *= scales[a] * scales[b] }
      }
    }
    let trace = (0..<f).reduce(0.0) { $0 + cov[$1 * f + $1] }
    let (vectors, values) = Self.leadingEigenvectors(cov, dimension: f, count: k, seed: seed)
    self.mean = mean
    self.scales = scales
    self.components = vectors
    self.variances = values
    self.totalVariance = trace
  }

  /// Fits to the rows of `features` [N, F].
  public init(_ features: Tensor, components k: Int = 2, standardize: Bool = false, seed: UInt64 = 0) throws {
    guard features.rank == 2 else { throw PCAError("PCA: expected features [N, F], got \(features.shape)") }
    let rows = Array(UnsafeBufferPointer(start: features.data, count: features.count))
    try self.init(
      rows: rows, count: features.shape[0], dimension: features.shape[1], components: k, standardize: standardize,
      seed: seed)
  }

  /// The coordinates of `row` [F] along the components.
  public func project(_ row: UnsafePointer<Float>) -> [Double] {
    components.map { v in
      var s = 0.0
      for j in 0..<mean.count { s += (Double(row[j]) - mean[j]) * scales[j] * v[j] }
      return s
    }
  }

  // MARK: Eigenvectors

  /// The `count` leading eigenpairs of the symmetric matrix `a` [f, f].
  static func leadingEigenvectors(_ a: [Double], dimension f: Int, count k: Int, seed: UInt64) -> ([[Double]], [Double])
  {
    let p = min(f, k + 14)
    // Q [f, p], column-major (column c at c*f): a seeded Gaussian start, orthonormalized.
    var rng = RandomGenerator(seed: seed)
    var q = (0..<(f * p)).map { _ in Double(rng.nextNormal()) }
    orthonormalize(&q, rows: f, columns: p)
    if p < f {
      // Each pass shrinks the error in the leading k directions by about λ_(p+1)/λ_k.
      var previous = [Double](repeating: 0, count: p)
      for _ in 0..<500 {
        q = multiply(a, q, f: f, p: p)
        orthonormalize(&q, rows: f, columns: p)
        let ritz = rayleighQuotients(a, q, f: f, p: p)
        let change = zip(ritz, previous).prefix(k).map { abs($0 - $1) }.max() ?? 0
        previous = ritz
        if change <= 1e-12 * max(abs(ritz[0]), 1e-300) { break }
      }
    }
    // Rayleigh–Ritz: T = Qᵀ A Q [p, p], diagonalized exactly.
    let aq = multiply(a, q, f: f, p: p)
    var t = [Double](repeating: 0, count: p * p)
    for i in 0..<p {
      for j in 0..<p {
        var s = 0.0
        for r in 0..<f { s += q[i * f + r] * aq[j * f + r] }
        t[i * p + j] = s
      }
    }
    let (values, vectors) = jacobiEigen(t, n: p)
    let order = (0..<p).sorted { values[$0] > values[$1] }
    var outVectors: [[Double]] = []
    var outValues: [Double] = []
    for c in order.prefix(k) {
      // The eigenvector of A is Q · (column c of the small eigenvector matrix).
      var v = [Double](repeating: 0, count: f)
      for j in 0..<p {
        let w = vectors[j * p + c]
        for r in 0..<f { v[r] += q[j * f + r] * w }
      }
      let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
      if norm > 0 { v = v.map { $0 / norm } }
      let largest = v.indices.max { abs(v[$0]) < abs(v[$1]) }!
      if v[largest] < 0 { v = v.map { -$0 } }
      outVectors.append(v)
      outValues.append(max(0, values[c]))
    }
    return (outVectors, outValues)
  }

  /// A·Q for A [f, f] row-major and Q [f, p] column-major; the result column-major.
  static func multiply(_ a: [Double], _ q: [Double], f: Int, p: Int) -> [Double] {
    var out = [Double](repeating: 0, count: f * p)
    for c in 0..<p {
      for r in 0..<f {
        var s = 0.0
        for j in 0..<f { s += a[r * f + j] * q[c * f + j] }
        out[c * f + r] = s
      }
    }
    return out
  }

  /// qᵀAq of each (unit) column of q.
  static func rayleighQuotients(_ a: [Double], _ q: [Double], f: Int, p: Int) -> [Double] {
    let aq = multiply(a, q, f: f, p: p)
    return (0..<p).map { c in (0..<f).reduce(0.0) { $0 + q[c * f + $1] * aq[c * f + $1] } }
  }

  /// Modified Gram–Schmidt, twice ("twice is enough"), on the columns of q [rows, columns]
  /// column-major. A column that vanishes is replaced by a unit vector not yet spanned.
  static func orthonormalize(_ q: inout [Double], rows: Int, columns: Int) {
    for _ in 0..<2 {
      for c in 0..<columns {
        for prev in 0..<c {
          var dot = 0.0
          for r in 0..<rows { dot += q[prev * rows + r] * q[c * rows + r] }
          for r in 0..<rows { q[c * rows + r] -= dot * q[prev * rows + r] }
        }
        var norm = 0.0
        for r in 0..<rows { norm += q[c * rows + r] * q[c * rows + r] }
        norm = norm.squareRoot()
        if norm < 1e-300 {
          // Degenerate (e.g. a matrix of rank < columns): restart from a basis vector.
          for r in 0..<rows { q[c * rows + r] = r == c % rows ? 1 : 0 }
          continue
        }
        for r in 0..<rows { q[c * rows + r] /= norm }
      }
    }
  }

  /// Eigenvalues and eigenvectors (columns of the row-major result) of the symmetric
  /// n×n matrix `a`, by cyclic Jacobi rotations until the off-diagonal part vanishes.
  static func jacobiEigen(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double]) {
    var a = matrix
    var v = [Double](repeating: 0, count: n * n)
    for i in 0..<n { v[i * n + i] = 1 }
    let scale = max(a.reduce(0) { $0 + $1 * $1 }, 1e-300)
    for _ in 0..<100 {
      var off = 0.0
      for i in 0..<n {
        for j in 0..<n where i != j { off += a[i * n + j] * a[i * n + j] }
      }
      if off <= 1e-30 * scale { break }
      for p in 0..<n {
        for q in (p + 1)..<n {
          let apq = a[p * n + q]
          if apq == 0 { continue }
          // The rotation that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.5.1).
          let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
          let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
          let c = 1 / (t * t + 1).squareRoot()
          let s = t * c
          for k in 0..<n {
            let akp = a[k * n + p], akq = a[k * n + q]
            a[k * n + p] = c * akp - s * akq
            a[k * n + q] = s * akp + c * akq
          }
          for k in 0..<n {
            let apk = a[p * n + k], aqk = a[q * n + k]
            a[p * n + k] = c * apk - s * aqk
            a[q * n + k] = s * apk + c * aqk
          }
          for k in 0..<n {
            let vkp = v[k * n + p], vkq = v[k * n + q]
            v[k * n + p] = c * vkp - s * vkq
            v[k * n + q] = s * vkp + c * vkq
          }
        }
      }
    }
    return ((0..<n).map { a[$0 * n + $0] }, v)
  }
}
