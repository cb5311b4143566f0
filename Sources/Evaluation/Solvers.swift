import Autograd
import Foundation

// Deterministic linear classifiers for small labeled sets, where a mini-batch schedule
// has few steps to work with: full-batch multinomial logistic regression minimized with
// L-BFGS, and ridge regression onto one-hot targets in closed form. Both standardize the
// features with the training set's statistics, like the BatchNorm of MAE's probe head.

/// Multinomial logistic regression: mean cross-entropy + λ/2·‖W‖² (the bias is not
/// penalized), minimized with L-BFGS (Nocedal & Wright, Algorithm 7.4–7.5; memory 10,
/// backtracking line search with the Armijo condition).
enum LogisticRegression {
  static func fit(_ x: Tensor, _ labels: [Int], _ classes: Int, _ s: LinearProbeSettings) throws -> LinearClassifier {
    let (n, f) = (x.shape[0], x.shape[1])
    let standardization = Standardization.fit(x)
    let xs = standardization.apply(x)
    let lambda = s.weightDecay ?? 1 / Double(n)
    let c = classes
    let dim = c * f + c
    let w = Tensor.zeros([c, f])
    let logits = Tensor.zeros([n, c])
    let g = Tensor.zeros([n, c])
    let gw = Tensor.zeros([c, f])

    /// Loss and gradient at θ = [W (row-major), b].
    func evaluate(_ theta: [Double]) -> (Double, [Double]) {
      for i in 0..<(c * f) { w.data[i] = Float(theta[i]) }
      let bias = (0..<c).map { Float(theta[c * f + $0]) }
      for i in 0..<n { (logits.data + i * c).update(from: bias, count: c) }
      BLAS.sgemm(transB: true, m: n, n: c, k: f, a: xs.data, lda: f, b: w.data, ldb: f, beta: 1, c: logits.data, ldc: c)
      var loss = 0.0
      var gradB = [Double](repeating: 0, count: c)
      let invN = 1 / Double(n)
      for i in 0..<n {
        let z = logits.data + i * c
        var m = -Double.infinity
        for j in 0..<c { m = max(m, Double(z[j])) }
        var sum = 0.0
        for j in 0..<c { sum += Foundation.exp(Double(z[j]) - m) }
        let lse = m + Foundation.log(sum)
        loss += lse - Double(z[labels[i]])
        let gi = g.data + i * c
        for j in 0..<c {
          let p = Foundation.exp(Double(z[j]) - lse)
          let d = (p - (j == labels[i] ? 1 : 0)) * invN
          gi[j] = Float(d)
          gradB[j] += d
        }
      }
      loss *= invN
      // dW = Gᵀ·X [C, F].
      BLAS.sgemm(transA: true, m: c, n: f, k: n, a: g.data, lda: c, b: xs.data, ldb: f, c: gw.data, ldc: f)
      var grad = [Double](repeating: 0, count: dim)
      var penalty = 0.0
      for i in 0..<(c * f) {
        penalty += theta[i] * theta[i]
        grad[i] = Double(gw.data[i]) + lambda * theta[i]
      }
      for j in 0..<c { grad[c * f + j] = gradB[j] }
      return (loss + 0.5 * lambda * penalty, grad)
    }

    var theta = [Double](repeating: 0, count: dim)
    var (loss, grad) = evaluate(theta)
    var history: [(s: [Double], y: [Double], rho: Double)] = []
    let memory = 10
    var iteration = 0
    func dot(_ a: [Double], _ b: [Double]) -> Double {
      var t = 0.0
      for i in 0..<a.count { t += a[i] * b[i] }
      return t
    }
    while iteration < s.iterations {
      let gMax = grad.map(abs).max() ?? 0
      if gMax < 1e-6 { break }
      // Two-loop recursion: d = −H·g.
      var q = grad
      var alphas = [Double](repeating: 0, count: history.count)
      for k in stride(from: history.count - 1, through: 0, by: -1) {
        let a = history[k].rho * dot(history[k].s, q)
        alphas[k] = a
        for i in 0..<dim { q[i] -= a * history[k].y[i] }
      }
      var gamma = 1.0
      if let last = history.last {
        gamma = dot(last.s, last.y) / dot(last.y, last.y)
      } else {
        gamma = 1 / max(1e-12, dot(grad, grad).squareRoot())  // first step: unit length
      }
      for i in 0..<dim { q[i] *= gamma }
      for k in 0..<history.count {
        let b = history[k].rho * dot(history[k].y, q)
        for i in 0..<dim { q[i] += (alphas[k] - b) * history[k].s[i] }
      }
      var direction = q.map { -$0 }
      var slope = dot(grad, direction)
      if slope >= 0 {  // not a descent direction: restart from the gradient
        history.removeAll()
        direction = grad.map { -$0 / max(1e-12, dot(grad, grad).squareRoot()) }
        slope = dot(grad, direction)
      }
      var t = 1.0
      var accepted: (theta: [Double], loss: Double, grad: [Double])?
      for _ in 0..<30 {
        let candidate = (0..<dim).map { theta[$0] + t * direction[$0] }
        let (l, gr) = evaluate(candidate)
        if l.isFinite && l <= loss + 1e-4 * t * slope {
          accepted = (candidate, l, gr)
          break
        }
        t *= 0.5
      }
      guard let step = accepted else { break }  // no decrease possible at float precision
      let sVec = (0..<dim).map { step.theta[$0] - theta[$0] }
      let yVec = (0..<dim).map { step.grad[$0] - grad[$0] }
      let sy = dot(sVec, yVec)
      if sy > 1e-10 {
        history.append((sVec, yVec, 1 / sy))
        if history.count > memory { history.removeFirst() }
      }
      let decrease = loss - step.loss
      (theta, loss, grad) = (step.theta, step.loss, step.grad)
      iteration += 1
      if decrease <= 1e-10 * max(1, abs(loss)) { break }
    }
    let weight = Tensor.zeros([c, f])
    for i in 0..<(c * f) { weight.data[i] = Float(theta[i]) }
    return LinearClassifier(
      mean: standardization.mean, invStd: standardization.invStd, weight: weight,
      bias: (0..<c).map { Float(theta[c * f + $0]) }, steps: iteration, finalLoss: loss)
  }
}

/// Ridge regression onto one-hot targets: W = (XᵀX/N + αI)⁻¹ XᵀY/N on standardized
/// features, b = the class frequencies (the features are centred); solved by Cholesky.
enum RidgeClassifier {
  static func fit(_ x: Tensor, _ labels: [Int], _ classes: Int, _ s: LinearProbeSettings) throws -> LinearClassifier {
    let (n, f) = (x.shape[0], x.shape[1])
    let c = classes
    let alpha = s.weightDecay ?? 1e-3
    let standardization = Standardization.fit(x)
    let xs = standardization.apply(x)
    let gram = Tensor.zeros([f, f])
    BLAS.sgemm(
      transA: true, m: f, n: f, k: n, alpha: 1 / Float(n), a: xs.data, lda: f, b: xs.data, ldb: f, c: gram.data, ldc: f)
    var a = (0..<(f * f)).map { Double(gram.data[$0]) }
    for j in 0..<f { a[j * f + j] += alpha }
    // XᵀY/N [F, C] and the class frequencies.
    var rhs = [Double](repeating: 0, count: f * c)
    var frequency = [Double](repeating: 0, count: c)
    for i in 0..<n {
      let y = labels[i]
      frequency[y] += 1 / Double(n)
      let row = xs.data + i * f
      for j in 0..<f { rhs[j * c + y] += Double(row[j]) / Double(n) }
    }
    guard cholesky(&a, f) else {
      throw EvaluationError(
        "ridge classifier", "the regularized Gram matrix is not positive definite; raise --weight-decay")
    }
    let solution = choleskySolve(a, f, rhs, c)  // [F, C]
    let weight = Tensor.zeros([c, f])
    for j in 0..<f {
      for k in 0..<c { weight.data[k * f + j] = Float(solution[j * c + k]) }
    }
    let classifier = LinearClassifier(
      mean: standardization.mean, invStd: standardization.invStd, weight: weight, bias: frequency.map { Float($0) },
      steps: 0, finalLoss: 0)
    // The mean squared error on the training set, for the record.
    let scores = try classifier.scores(x)
    var mse = 0.0
    for i in 0..<n {
      for k in 0..<c {
        let d = Double(scores.data[i * c + k]) - (labels[i] == k ? 1 : 0)
        mse += d * d
      }
    }
    return LinearClassifier(
      mean: classifier.mean, invStd: classifier.invStd, weight: weight, bias: classifier.bias, steps: 0,
      finalLoss: mse / Double(n))
  }

  /// In-place lower Cholesky factor of the symmetric `n`×`n` matrix `a` (row-major);
  /// false if it is not positive definite.
  static func cholesky(_ a: inout [Double], _ n: Int) -> Bool {
    for j in 0..<n {
      var d = a[j * n + j]
      for k in 0..<j { d -= a[j * n + k] * a[j * n + k] }
      guard d > 0 else { return false }
      let l = d.squareRoot()
      a[j * n + j] = l
      for i in (j + 1)..<max(j + 1, n) {
        var v = a[i * n + j]
        for k in 0..<j { v -= a[i * n + k] * a[j * n + k] }
        a[i * n + j] = v / l
      }
    }
    return true
  }

  /// Solves L·Lᵀ·X = B for `m` right-hand sides (B [n, m] row-major).
  static func choleskySolve(_ l: [Double], _ n: Int, _ b: [Double], _ m: Int) -> [Double] {
    var x = b
    for col in 0..<m {
      for i in 0..<n {  // forward: L·z = b
        var v = x[i * m + col]
        for k in 0..<i { v -= l[i * n + k] * x[k * m + col] }
        x[i * m + col] = v / l[i * n + i]
      }
      for i in stride(from: n - 1, through: 0, by: -1) {  // back: Lᵀ·x = z
        var v = x[i * m + col]
        for k in (i + 1)..<max(i + 1, n) { v -= l[k * n + i] * x[k * m + col] }
        x[i * m + col] = v / l[i * n + i]
      }
    }
    return x
  }
}
