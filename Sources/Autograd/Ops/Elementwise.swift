/// Element-wise ops with NumPy broadcasting: binary arithmetic, unary math and
/// activations, clamp, dropout. Each op's pullback is defined next to its forward.

// MARK: - Broadcasting machinery

import Foundation

/// The broadcast shape of two shapes (NumPy rules: align right, 1 stretches).
func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
  let rank = max(a.count, b.count)
  var out = [Int](repeating: 1, count: rank)
  for i in 0..<rank {
    let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
    let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
    guard da == db || da == 1 || db == 1 else {
      throw TensorError(
        op, "\(fmt(a)) and \(fmt(b)) cannot be broadcast together (axis \(i): \(da) vs \(db))")
    }
    out[i] = da == 1 ? db : da
  }
  return out
}

/// A broadcast iteration plan: output dims with per-input strides (0 where the input is
/// broadcast), adjacent dims merged where both inputs allow it so the inner loop is as
/// long as possible.
struct BroadcastPlan {
  var dims: [Int] = []
  var strideA: [Int] = []
  var strideB: [Int] = []

  init(out: [Int], a: [Int], b: [Int]) {
    func strides(_ s: [Int]) -> [Int] {
      let padded = [Int](repeating: 1, count: out.count - s.count) + s
      var st = [Int](repeating: 0, count: out.count)
      var acc = 1
      for i in stride(from: out.count - 1, through: 0, by: -1) {
        st[i] = padded[i] == 1 && out[i] != 1 ? 0 : acc
        acc *= padded[i]
      }
      return st
    }
    let sa = strides(a)
    let sb = strides(b)
    for i in 0..<out.count where out[i] != 1 {
      if let last = dims.indices.last,
        Self.mergeable(strideA[last], sa[i], out[i]), Self.mergeable(strideB[last], sb[i], out[i])
      {
        dims[last] *= out[i]
        strideA[last] = sa[i]
        strideB[last] = sb[i]
      } else {
        dims.append(out[i])
        strideA.append(sa[i])
        strideB.append(sb[i])
      }
    }
    if dims.isEmpty {
      dims = [1]
      strideA = [0]
      strideB = [0]
    }
  }

  /// Dim `outer` (stride `so`) can merge into the following dim (stride `si`, size n)
  /// when both are broadcast or the outer one continues the inner one.
  static func mergeable(_ so: Int, _ si: Int, _ n: Int) -> Bool {
    (so == 0 && si == 0) || (so == si * n && si != 0)
  }
}

// Element functions are small structs rather than closures: a generic kernel is
// specialized for each struct type, so the function is inlined into the loop that each
// worker thread runs and the loop vectorizes. (A closure captured by the worker's
// closure stays an indirect call per element: 5-10x slower.)

/// f(x), one element.
protocol UnaryFunction { func callAsFunction(_ x: Float) -> Float }
/// f(a, b), one element.
protocol BinaryFunction { func callAsFunction(_ a: Float, _ b: Float) -> Float }

/// out[i] = f(a[ia], b[ib]) over the broadcast shape (or `outShape`, which the caller
/// has checked).
@inline(__always)
func broadcastMap<F: BinaryFunction>(
  _ a: Tensor, _ b: Tensor, op: String, outShape target: [Int]? = nil, _ f: F
) throws -> Tensor {
  let outShape =
    try target ?? (a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape, op: op))
  let out = Tensor(uninitializedShape: outShape)
  let pa = a.data
  let pb = b.data
  let po = out.data
  let n = out.count
  if n == 0 { return out }
  if a.shape == outShape && b.shape == outShape {
    Parallel.forChunks(n, minChunk: 1 << 14) { r in
      for i in r { po[i] = f(pa[i], pb[i]) }
    }
    return out
  }
  let plan = BroadcastPlan(out: outShape, a: a.shape, b: b.shape)
  let inner = plan.dims.last!
  let ia = plan.strideA.last!
  let ib = plan.strideB.last!
  let rows = n / inner
  let outerDims = Array(plan.dims.dropLast())
  let outerA = Array(plan.strideA.dropLast())
  let outerB = Array(plan.strideB.dropLast())
  Parallel.forChunks(rows, minChunk: max(1, (1 << 14) / inner)) { r in
    // Offsets of the first row of this chunk, then advanced like an odometer.
    var index = [Int](repeating: 0, count: outerDims.count)
    var rem = r.lowerBound
    for d in stride(from: outerDims.count - 1, through: 0, by: -1) {
      index[d] = rem % outerDims[d]
      rem /= outerDims[d]
    }
    var offA = 0
    var offB = 0
    for d in 0..<outerDims.count {
      offA += index[d] * outerA[d]
      offB += index[d] * outerB[d]
    }
    for row in r {
      let o = po + row * inner
      let xa = pa + offA
      let xb = pb + offB
      if ia == 1 && ib == 1 {
        for j in 0..<inner { o[j] = f(xa[j], xb[j]) }
      } else if ia == 1 {
        let vb = xb[0]
        for j in 0..<inner { o[j] = f(xa[j], vb) }
      } else if ib == 1 {
        let va = xa[0]
        for j in 0..<inner { o[j] = f(va, xb[j]) }
      } else {
        o[0] = f(xa[0], xb[0])
        for j in 1..<max(inner, 1) { o[j] = o[0] }
      }
      // Advance the odometer.
      var d = outerDims.count - 1
      while d >= 0 {
        index[d] += 1
        offA += outerA[d]
        offB += outerB[d]
        if index[d] < outerDims[d] { break }
        offA -= outerA[d] * outerDims[d]
        offB -= outerB[d] * outerDims[d]
        index[d] = 0
        d -= 1
      }
    }
  }
  return out
}

/// out[i] = f(x[i]).
@inline(__always)
func map<F: UnaryFunction>(_ x: Tensor, _ f: F) -> Tensor {
  let out = Tensor(uninitializedShape: x.shape)
  let px = x.data
  let po = out.data
  Parallel.forChunks(x.count, minChunk: 1 << 14) { r in
    for i in r { po[i] = f(px[i]) }
  }
  return out
}

/// out[i] = f(x[i], y[i]) for equal shapes.
@inline(__always)
func zipMap<F: BinaryFunction>(_ x: Tensor, _ y: Tensor, _ f: F) -> Tensor {
  let out = Tensor(uninitializedShape: x.shape)
  let px = x.data
  let py = y.data
  let po = out.data
  Parallel.forChunks(x.count, minChunk: 1 << 14) { r in
    for i in r { po[i] = f(px[i], py[i]) }
  }
  return out
}

/// Sums a broadcast gradient back down to an input's shape.
func reduceToShape(_ g: Tensor, _ shape: [Int]) throws -> Tensor {
  if g.shape == shape { return g }
  let lead = g.rank - shape.count
  var axes = Array(0..<lead)
  for i in 0..<shape.count where shape[i] == 1 && g.shape[lead + i] != 1 {
    axes.append(lead + i)
  }
  let summed = axes.isEmpty ? g : try g.sum(axes: axes, keepDims: true)
  return try summed.reshaped(shape)
}

// MARK: - Element functions

struct Add: BinaryFunction {
  @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b }
}
struct Sub: BinaryFunction {
  @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a - b }
}
struct Mul: BinaryFunction {
  @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b }
}
struct Div: BinaryFunction {
  @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b }
}
struct Pow: BinaryFunction {
  @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { Foundation.pow(a, b) }
}
struct Maximum: BinaryFunction {
  @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { Swift.max(a, b) }
}
/// 1 where a ≥ b (where `maximum` takes a), else 0.
struct TakesFirst: BinaryFunction {
  @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a >= b ? 1 : 0 }
}
/// The first argument (broadcasting copy).
struct First: BinaryFunction {
  @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a }
}
/// d(a/b)/db · g where the first argument is g·a: −(g·a)/b².
struct DivGradDivisor: BinaryFunction {
  @inline(__always) func callAsFunction(_ ga: Float, _ b: Float) -> Float { -ga / (b * b) }
}
/// d(a^b)/da = b·a^(b−1).
struct PowGradBase: BinaryFunction {
  @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float {
    b * Foundation.pow(a, b - 1)
  }
}
/// d(a^b)/db = a^b·log a, from y = a^b and a.
struct PowGradExponent: BinaryFunction {
  @inline(__always) func callAsFunction(_ y: Float, _ a: Float) -> Float { y * Foundation.log(a) }
}

struct AddScalar: UnaryFunction {
  let s: Float
  @inline(__always) func callAsFunction(_ x: Float) -> Float { x + s }
}
struct MulScalar: UnaryFunction {
  let s: Float
  @inline(__always) func callAsFunction(_ x: Float) -> Float { x * s }
}
struct ScalarMinus: UnaryFunction {
  let s: Float
  @inline(__always) func callAsFunction(_ x: Float) -> Float { s - x }
}
struct Square: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float { x * x }
}
struct PowScalar: UnaryFunction {
  let p: Float
  @inline(__always) func callAsFunction(_ x: Float) -> Float { Foundation.pow(x, p) }
}
struct Exp: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float { FastMath.exp(x) }
}
struct Log: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float { Foundation.log(x) }
}
struct Sqrt: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float { x.squareRoot() }
}
struct Rsqrt: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float { 1 / x.squareRoot() }
}
struct Abs: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float { Swift.abs(x) }
}
struct Clamp: UnaryFunction {
  let lo, hi: Float
  @inline(__always) func callAsFunction(_ x: Float) -> Float { Swift.min(Swift.max(x, lo), hi) }
}
struct Tanh: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float { FastMath.tanh(x) }
}
struct Sigmoid: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float { FastMath.sigmoid(x) }
}
struct ReLU: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float { Swift.max(x, 0) }
}
/// GELU(x) = x·Φ(x) = x/2·(1 + erf(x/√2)).
struct GELUErf: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float {
    0.5 * x * (1 + FastMath.erf(x * 0.70710678118654752))
  }
}
/// GELU with the tanh approximation: x/2·(1 + tanh(√(2/π)·(x + 0.044715x³))).
struct GELUTanh: UnaryFunction {
  @inline(__always) func callAsFunction(_ x: Float) -> Float {
    0.5 * x * (1 + FastMath.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
  }
}

// Gradient functions: (upstream gradient g, saved input x or output y) → g·f′.
struct SquareGrad: BinaryFunction {
  @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float { 2 * g * x }
}
struct PowScalarGrad: BinaryFunction {
  let p: Float
  @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float {
    g * p * Foundation.pow(x, p - 1)
  }
}
struct SqrtGrad: BinaryFunction {
  @inline(__always) func callAsFunction(_ g: Float, _ y: Float) -> Float { 0.5 * g / y }
}
/// d(x^−½)/dx = −½·x^−³ᐟ² = −½·y³.
struct RsqrtGrad: BinaryFunction {
  @inline(__always) func callAsFunction(_ g: Float, _ y: Float) -> Float { -0.5 * g * y * y * y }
}
struct AbsGrad: BinaryFunction {
  @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float {
    x > 0 ? g : (x < 0 ? -g : 0)
  }
}
struct ClampGrad: BinaryFunction {
  let lo, hi: Float
  @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float {
    x >= lo && x <= hi ? g : 0
  }
}
struct TanhGrad: BinaryFunction {
  @inline(__always) func callAsFunction(_ g: Float, _ y: Float) -> Float { g * (1 - y * y) }
}
struct SigmoidGrad: BinaryFunction {
  @inline(__always) func callAsFunction(_ g: Float, _ y: Float) -> Float { g * y * (1 - y) }
}
struct ReLUGrad: BinaryFunction {
  @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float { x > 0 ? g : 0 }
}
/// d(x·Φ(x))/dx = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π).
struct GELUErfGrad: BinaryFunction {
  @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float {
    let cdf = 0.5 * (1 + FastMath.erf(x * 0.70710678118654752))
    let pdf = 0.3989422804014327 * FastMath.exp(-0.5 * x * x)
    return g * (cdf + x * pdf)
  }
}
struct GELUTanhGrad: BinaryFunction {
  @inline(__always) func callAsFunction(_ g: Float, _ x: Float) -> Float {
    let c: Float = 0.7978845608028654
    let t = FastMath.tanh(c * (x + 0.044715 * x * x * x))
    let dt = (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    return g * (0.5 * (1 + t) + 0.5 * x * dt)
  }
}

// MARK: - Binary arithmetic

extension Tensor {
  public static func + (a: Tensor, b: Tensor) throws -> Tensor {
    try broadcastMap(a, b, op: "add", Add()).recording("add", [a, b]) { g in
      [
        a.requiresGrad ? try reduceToShape(g, a.shape) : nil,
        b.requiresGrad ? try reduceToShape(g, b.shape) : nil,
      ]
    }
  }

  public static func - (a: Tensor, b: Tensor) throws -> Tensor {
    try broadcastMap(a, b, op: "sub", Sub()).recording("sub", [a, b]) { g in
      [
        a.requiresGrad ? try reduceToShape(g, a.shape) : nil,
        b.requiresGrad ? try reduceToShape(map(g, MulScalar(s: -1)), b.shape) : nil,
      ]
    }
  }

  public static func * (a: Tensor, b: Tensor) throws -> Tensor {
    try broadcastMap(a, b, op: "mul", Mul()).recording("mul", [a, b]) { g in
      [
        a.requiresGrad ? try reduceToShape(try g * b, a.shape) : nil,
        b.requiresGrad ? try reduceToShape(try g * a, b.shape) : nil,
      ]
    }
  }

  public static func / (a: Tensor, b: Tensor) throws -> Tensor {
    try broadcastMap(a, b, op: "div", Div()).recording("div", [a, b]) { g in
      // d(a/b)/da = 1/b, d(a/b)/db = −a/b².
      [
        a.requiresGrad ? try reduceToShape(try g / b, a.shape) : nil,
        b.requiresGrad
          ? try reduceToShape(try broadcastMap(try g * a, b, op: "div", DivGradDivisor()), b.shape)
          : nil,
      ]
    }
  }

  /// a^b element-wise (broadcast). The gradient for b uses log(a) and needs a > 0.
  public func pow(_ exponent: Tensor) throws -> Tensor {
    let a = self
    let b = exponent
    let y = try broadcastMap(a, b, op: "pow", Pow())
    return y.recording("pow", [a, b]) { g in
      [
        a.requiresGrad
          ? try reduceToShape(try g * broadcastMap(a, b, op: "pow", PowGradBase()), a.shape) : nil,
        b.requiresGrad
          ? try reduceToShape(try g * broadcastMap(y, a, op: "pow", PowGradExponent()), b.shape)
          : nil,
      ]
    }
  }

  /// Element-wise maximum (the gradient goes to `a` where a ≥ b).
  public func maximum(_ other: Tensor) throws -> Tensor {
    let a = self
    let b = other
    return try broadcastMap(a, b, op: "maximum", Maximum()).recording("maximum", [a, b]) { g in
      let takesA = try broadcastMap(a, b, op: "maximum", TakesFirst())
      return [
        a.requiresGrad ? try reduceToShape(try g * takesA, a.shape) : nil,
        b.requiresGrad ? try reduceToShape(try g * map(takesA, ScalarMinus(s: 1)), b.shape) : nil,
      ]
    }
  }

  // Scalars on either side.
  public static func + (a: Tensor, s: Float) -> Tensor {
    map(a, AddScalar(s: s)).recording("add_scalar", [a]) { g in [g] }
  }
  public static func + (s: Float, a: Tensor) -> Tensor { a + s }
  public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
  public static func - (s: Float, a: Tensor) -> Tensor {
    map(a, ScalarMinus(s: s)).recording("rsub_scalar", [a]) { g in [map(g, MulScalar(s: -1))] }
  }
  public static func * (a: Tensor, s: Float) -> Tensor {
    map(a, MulScalar(s: s)).recording("mul_scalar", [a]) { g in [map(g, MulScalar(s: s))] }
  }
  public static func * (s: Float, a: Tensor) -> Tensor { a * s }
  public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
  public static prefix func - (a: Tensor) -> Tensor {
    map(a, MulScalar(s: -1)).recording("neg", [a]) { g in [map(g, MulScalar(s: -1))] }
  }
}

// MARK: - Unary math and activations

extension Tensor {
  /// Applies `f`, with the pullback g·`grad`(g, x) computed from the input.
  @inline(__always)
  private func unary<F: UnaryFunction, G: BinaryFunction>(
    _ name: String, _ f: F, gradFromInput grad: G
  ) -> Tensor {
    let x = self
    return map(x, f).recording(name, [x]) { g in [zipMap(g, x, grad)] }
  }

  /// Applies `f`, with the pullback computed from the output y (cheaper where f′ is a
  /// function of y: exp, tanh, sigmoid, sqrt).
  @inline(__always)
  private func unary<F: UnaryFunction, G: BinaryFunction>(
    _ name: String, _ f: F, gradFromOutput grad: G
  ) -> Tensor {
    let y = map(self, f)
    return y.recording(name, [self]) { g in [zipMap(g, y, grad)] }
  }

  /// x^p for a constant exponent.
  public func pow(_ p: Float) -> Tensor {
    p == 2
      ? unary("square", Square(), gradFromInput: SquareGrad())
      : unary("pow_scalar", PowScalar(p: p), gradFromInput: PowScalarGrad(p: p))
  }
  public func exp() -> Tensor { unary("exp", Exp(), gradFromOutput: Mul()) }
  public func log() -> Tensor { unary("log", Log(), gradFromInput: Div()) }
  public func sqrt() -> Tensor { unary("sqrt", Sqrt(), gradFromOutput: SqrtGrad()) }
  /// 1/√x.
  public func rsqrt() -> Tensor { unary("rsqrt", Rsqrt(), gradFromOutput: RsqrtGrad()) }
  public func abs() -> Tensor { unary("abs", Abs(), gradFromInput: AbsGrad()) }
  /// Limits values to [min, max]; the gradient is zero where a bound is active.
  public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
    unary("clamp", Clamp(lo: lo, hi: hi), gradFromInput: ClampGrad(lo: lo, hi: hi))
  }
  public func tanh() -> Tensor { unary("tanh", Tanh(), gradFromOutput: TanhGrad()) }
  public func sigmoid() -> Tensor { unary("sigmoid", Sigmoid(), gradFromOutput: SigmoidGrad()) }
  public func relu() -> Tensor { unary("relu", ReLU(), gradFromInput: ReLUGrad()) }

  /// How GELU is computed: exactly with erf (Hendrycks & Gimpel 2016; timm's default
  /// `nn.GELU()`), or with the tanh approximation (`approximate='tanh'`).
  public enum GELUForm: Sendable { case erf, tanh }

  /// GELU(x) = x·Φ(x).
  public func gelu(_ form: GELUForm = .erf) -> Tensor {
    switch form {
    case .erf: return unary("gelu", GELUErf(), gradFromInput: GELUErfGrad())
    case .tanh: return unary("gelu_tanh", GELUTanh(), gradFromInput: GELUTanhGrad())
    }
  }

  /// Inverted dropout: zeroes each element with probability `p` and scales the rest by
  /// 1/(1−p), so evaluation needs no rescaling. Identity when `training` is false.
  public func dropout(_ p: Float, training: Bool, using rng: inout RandomGenerator) throws -> Tensor
  {
    guard p >= 0 && p < 1 else { throw TensorError("dropout", "p must be in [0, 1), got \(p)") }
    if !training || p == 0 { return self }
    let x = self
    let mask = Tensor(uninitializedShape: shape)
    let keep = 1 / (1 - p)
    for i in 0..<count { mask.data[i] = rng.nextFloat() < p ? 0 : keep }
    return zipMap(x, mask, Mul()).recording("dropout", [x]) { g in [zipMap(g, mask, Mul())] }
  }
}
