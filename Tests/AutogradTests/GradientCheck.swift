import Autograd
import XCTest

/// Central-difference gradient checking (test tier 1).
///
/// For a function f of several tensors, the analytic gradient of L = Σ f(x)·W (W fixed
/// random weights, so every output element matters differently) is compared with
/// (L(x + ε·eᵢ) − L(x − ε·eᵢ)) / 2ε for each checked element i. L is accumulated in
/// Double; with Float32 forward passes, ε = 1e-2 balances truncation error (O(ε²)) and
/// rounding error (O(u/ε)). Tolerance: |analytic − numeric| ≤ atol + rtol·|numeric|.
struct GradientCheck {
  var epsilon: Float = 1e-2
  var atol: Float = 2e-3
  var rtol: Float = 2e-2
  /// At most this many elements per input are checked (spread evenly), so big inputs
  /// stay fast.
  var maxElementsPerInput = 48

  func check(
    _ name: String, _ inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line,
    _ f: ([Tensor]) throws -> Tensor
  ) throws {
    for t in inputs {
      t.zeroGrad()
      t.requiringGrad()
    }
    let out = try f(inputs)
    var rng = RandomGenerator(seed: 12345)
    let weights = Tensor.uniform(out.shape, low: -1, high: 1, using: &rng)
    try out.backward(weights)

    func loss() throws -> Double {
      let y = try withoutGradients { try f(inputs) }
      var s = 0.0
      for i in 0..<y.count { s += Double(y.data[i]) * Double(weights.data[i]) }
      return s
    }

    for (k, t) in inputs.enumerated() {
      let grad = try XCTUnwrap(t.grad, "\(name): input \(k) got no gradient", file: file, line: line)
      XCTAssertEqual(grad.shape, t.shape, "\(name): gradient shape of input \(k)", file: file, line: line)
      let stride = max(1, t.count / maxElementsPerInput)
      var i = 0
      while i < t.count {
        let saved = t.data[i]
        t.data[i] = saved + epsilon
        let plus = try loss()
        t.data[i] = saved - epsilon
        let minus = try loss()
        t.data[i] = saved
        let numeric = Float((plus - minus) / Double(2 * epsilon))
        let analytic = grad.data[i]
        let tol = atol + rtol * abs(numeric)
        if !(abs(analytic - numeric) <= tol) {
          XCTFail(
            "\(name): d/d input\(k)[\(i)] analytic \(analytic) vs numeric \(numeric) (tolerance \(tol))",
            file: file, line: line)
          return
        }
        i += stride
      }
    }
  }
}

/// Seeded random inputs for gradient checks.
struct Inputs {
  var rng: RandomGenerator
  init(seed: UInt64) { rng = RandomGenerator(seed: seed) }

  mutating func uniform(_ shape: [Int], _ low: Float = -1, _ high: Float = 1) -> Tensor {
    Tensor.uniform(shape, low: low, high: high, using: &rng)
  }

  /// Values bounded away from zero (|x| ∈ [0.2, 1]), for ops with a kink at 0.
  mutating func awayFromZero(_ shape: [Int]) -> Tensor {
    let t = uniform(shape, 0.2, 1)
    for i in 0..<t.count where rng.nextFloat() < 0.5 { t.data[i] = -t.data[i] }
    return t
  }

  /// Distinct values (a shuffled ramp with spacing 0.1), so maxima have no ties within
  /// a finite-difference step.
  mutating func distinct(_ shape: [Int]) -> Tensor {
    let n = shape.reduce(1, *)
    let perm = rng.permutation(n)
    return try! Tensor(shape: shape, perm.map { Float($0) * 0.1 - Float(n) * 0.05 })
  }
}
