/// Element-wise ops with NumPy broadcasting: binary arithmetic, unary math and
/// activations, clamp, dropout. Each op's pullback is defined next to its forward.
/// The kernels they run on are in Broadcasting.swift.

import Foundation

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
